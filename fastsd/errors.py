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


DISK_FULL_HINT = ("free space on the volume (old exports and checkpoints: fastsd session rm, fastsd models rm) "
                  "or use a larger one, then run the same command again: what was written before is intact")
# How libraries word a write that hit a full disk: torch's zip writer, safetensors' Rust error, libc.
_DISK_FULL_MARKS = ("PytorchStreamWriter failed", "inline_container.cc", "StorageFull", "No space left on device",
                    "Disk quota exceeded")


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` (or what caused it) says the disk or quota is full."""
    import errno

    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if not isinstance(error, FastsdError) and any(mark in str(error) for mark in _DISK_FULL_MARKS):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def disk_full(target, error: BaseException | None = None) -> FastsdError:
    """The error for a write to `target` that found the disk full (nothing of it was kept)."""
    detail = f" ({error.strerror})" if isinstance(error, OSError) and error.strerror else ""
    return FastsdError(f"no space left on the device while writing {target}{detail}; the partial file was removed",
                       DISK_FULL_HINT)


def environment_error(error: BaseException) -> FastsdError | None:
    """A clear FastsdError for an OS-level failure that is not a bug (disk full, permissions, read-only), else None."""
    import errno

    if is_disk_full(error):
        target = getattr(error, "filename", None) or "a file on the volume"
        return disk_full(target, error)
    if not isinstance(error, OSError) or error.errno is None:
        return None
    where = f" {error.filename}" if error.filename else ""
    known = {
        errno.EACCES: ("permission denied", "check who owns the data volume (the containers run as its owner's uid)"),
        errno.EPERM: ("operation not permitted", "check who owns the data volume (the containers run as its owner's uid)"),
        errno.EROFS: ("read-only file system", "mount the data volume read-write"),
        errno.EIO: ("input/output error", "the disk or network volume failed: check it, then run the command again"),
    }
    if error.errno not in known:
        return None
    what, hint = known[error.errno]
    return FastsdError(f"{what}:{where or ' (no file named)'}", hint)
