import pytest

from tests.compose.interpolate import InterpolationError, interpolate, referenced_variables

ENV = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize("text, expected", [
    ("${SET}", "value"),
    ("$SET/x", "value/x"),
    ("${UNSET}", ""),
    ("${UNSET:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${UNSET-dflt}", "dflt"),
    ("${SET:-dflt}", "value"),
    ("${SET:?must be set}", "value"),
    ("${SET:+alt}", "alt"),
    ("${UNSET:+alt}", ""),
    ("$${SET}", "${SET}"),
    ("${UNSET:-${SET}}", "value"),
    ("a:${UNSET:-127.0.0.1}:${SET}", "a:127.0.0.1:value"),
])
def test_interpolation_table(text, expected):
    assert interpolate(text, ENV) == expected


@pytest.mark.parametrize("text", ["${UNSET:?needed}", "${EMPTY:?needed}", "${UNSET?needed}"])
def test_required_variables_raise(text):
    with pytest.raises(InterpolationError, match="needed"):
        interpolate(text, ENV)


def test_empty_passes_the_plain_question_mark():
    assert interpolate("${EMPTY?needed}", ENV) == ""


def test_referenced_variables():
    assert referenced_variables("${A:-x} $B $$C ${D?e}") == {"A", "B", "D"}
