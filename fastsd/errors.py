"""The one error type of fastsd: a message, a hint and an exit code."""

from __future__ import annotations

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class FastsdError(Exception):
    """An error the CLI prints as `error:` / `hint:` lines and turns into an exit code."""

    def __init__(self, message: str, hint: str | None = None, *, code: int = EXIT_FAILURE,
                 reported: bool = False):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code
        # True when a child fastsd process already printed this error: the CLI then prints
        # only the hint (an error is shown once, not by the child and again by its parent).
        self.reported = reported

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


def bad_input(message: str, hint: str | None = None) -> FastsdError:
    """A FastsdError for input the user can fix (exit code 2)."""
    return FastsdError(message, hint, code=EXIT_BAD_INPUT)


def did_you_mean(word: str, choices) -> str | None:
    """The closest of `choices` to `word`, or None when nothing is close."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return close[0] if close else None


def unknown_choice(what: str, value: str, choices) -> FastsdError:
    """A bad-input error for a value outside a fixed set, naming the valid choices."""
    choices = sorted(choices)
    near = did_you_mean(value, choices)
    hint = f"did you mean {near!r}? " if near else ""
    hint += "valid: " + ", ".join(choices)
    return bad_input(f"unknown {what} {value!r}", hint)
