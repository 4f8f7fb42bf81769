"""JSON in and out: every answer redacted, every refusal `{"error", "hint"}` with a fitting status."""

from __future__ import annotations

import json

from starlette.responses import JSONResponse

from fastsd.errors import EXIT_BAD_INPUT, FastsdError, bad_input
from fastsd.secrets import redact_obj

MAX_JSON_BYTES = 64 * 1024


def answer(data, status: int = 200) -> JSONResponse:
    """`data` as JSON, with every known secret replaced by ***."""
    return JSONResponse(redact_obj(data), status_code=status)


def status_for(message: str, code: int) -> int:
    """400 for input the user can fix, 409 when the session is busy, 500 otherwise."""
    if " is busy" in message or "already running" in message:
        return 409
    return 400 if code == EXIT_BAD_INPUT else 500


def refuse(error: FastsdError) -> JSONResponse:
    """A FastsdError as a JSON refusal."""
    status = getattr(error, "status", None) or status_for(error.message, error.code)
    return answer({"error": error.message, "hint": error.hint}, status)


def from_outcome(outcome, data=None) -> JSONResponse:
    """A CLI call's answer: its JSON when it worked, its error/hint lines when it did not."""
    if outcome.ok:
        return answer(data if data is not None else (outcome.data or {}))
    return answer({"error": outcome.error, "hint": outcome.hint}, status_for(outcome.error or "", outcome.code))


async def read_json(request) -> dict:
    """The request's JSON object body (at most 64 KiB), or a bad-input error."""
    body = await request.body()
    if len(body) > MAX_JSON_BYTES:
        raise bad_input("request body too large", "send at most 64 KiB of JSON")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise bad_input("the request body is not JSON", "send a JSON object") from None
    if not isinstance(data, dict):
        raise bad_input("the request body is not a JSON object", 'send e.g. {"name": "alice"}')
    return data


def field(data: dict, name: str, kind=str, required: bool = True, default=None):
    """`data[name]` checked to be of `kind` (bool is not an int here)."""
    if name not in data or data[name] is None:
        if required:
            raise bad_input(f"missing field {name!r}", f"send {name} in the JSON body")
        return default
    value = data[name]
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise bad_input(f"field {name!r} must be {kind.__name__}, not {type(value).__name__}")
    if kind is str:
        no_nul(value, f"field {name!r}")
    return value


def no_nul(text: str, what: str) -> str:
    """`text`, refused when it holds a NUL byte (no file name, flag or prompt can carry one)."""
    if "\x00" in text:
        raise bad_input(f"{what} contains a NUL byte (\\0)", "remove it: texts cannot hold NUL characters")
    return text
