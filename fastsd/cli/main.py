"""`fastsd`: parse global options, dispatch to a command module, print errors as error/hint."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from fastsd import __version__
from fastsd.errors import EXIT_BAD_INPUT, FastsdError, bad_input, environment_error
from fastsd.secrets import redact, remember_environment


def command_modules() -> list[str]:
    """Every module of fastsd.cli.commands; each exposes register(subparsers)."""
    folder = os.path.join(os.path.dirname(__file__), "commands")
    names = (entry[:-3] for entry in os.listdir(folder) if entry.endswith(".py"))
    return sorted(name for name in names if not name.startswith("_"))


SECRET_FILE_OPTIONS = (
    ("--hf-token-file", "HF_TOKEN"),
    ("--ngrok-token-file", "NGROK_AUTHTOKEN"),
    ("--web-password-file", "FASTSD_WEB_PASSWORD"),
)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors become FastsdError (exit 2, error/hint lines)."""

    def error(self, message):
        raise bad_input(message, f"see: {self.prog} --help")

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("action", _Commands)
        return super().add_subparsers(**kwargs)


class _Commands(argparse._SubParsersAction):
    """Subcommands whose --help opens with a description (their help line, unless they give one)."""

    def add_parser(self, name, **kwargs):
        text = kwargs.get("help")
        if not kwargs.get("description") and text:
            kwargs["description"] = text[0].upper() + text[1:] + "."
        return super().add_parser(name, **kwargs)


class _Swallow:
    """Stands in for the parser of a command group that is not being run: ignores its set-up."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


class _OnlyOneGroup:
    """Builds the full parser of one command group; the others get a help line only (fast start)."""

    def __init__(self, commands, wanted: str | None):
        self.commands, self.wanted = commands, wanted

    def add_parser(self, name, **kwargs):
        if name == self.wanted:
            return self.commands.add_parser(name, **kwargs)
        self.commands.add_parser(name, help=kwargs.get("help"))
        return _Swallow()


def wanted_command(argv: list[str]) -> str | None:
    """The command group named in `argv` (global options already in front), or None."""
    i = 0
    while i < len(argv):
        if argv[i] in GLOBAL_VALUED:
            i += 2
            continue
        if not argv[i].startswith("-"):
            return argv[i]
        i += 1
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser: global options and every command group (fully built only for the one in argv)."""
    parser = Parser(prog="fastsd", description="DreamBooth fine-tuning and A1111 serving on one data volume.")
    parser.add_argument("--version", action="version", version=f"fastsd {__version__}")
    parser.add_argument("--data", metavar="DIR", help="data root (default: $FASTSD_DATA, else ./data)")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    for option, env_var in SECRET_FILE_OPTIONS:
        parser.add_argument(option, metavar="FILE", help=f"read {env_var} from FILE")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    wanted = wanted_command(argv) if argv is not None else None
    # `plan` re-parses a workload command, so it needs every group; --help needs help lines only.
    group = commands if argv is None or wanted == "plan" else _OnlyOneGroup(commands, wanted)
    for name in command_modules():
        importlib.import_module(f"fastsd.cli.commands.{name}").register(group)
    return parser


GLOBAL_FLAGS = ("--json", "--debug")
GLOBAL_VALUED = ("--data", *(option for option, _ in SECRET_FILE_OPTIONS))


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options given after the command (`fastsd models list --json`) to the front."""
    front, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif arg in GLOBAL_VALUED and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        elif arg.split("=", 1)[0] in GLOBAL_VALUED and "=" in arg:
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def check_data_root(root, use: str | None) -> None:
    """A command that lists the volume needs an existing one; one that fills it, a usable folder."""
    from fastsd.layout import require_existing_root, require_usable_root

    if use == "existing":
        require_existing_root(root)
    elif use == "new":
        require_usable_root(root)


def _load_secrets(args) -> None:
    from fastsd.secrets import load_secret_file

    for option, env_var in SECRET_FILE_OPTIONS:
        path = getattr(args, option.lstrip("-").replace("-", "_"))
        if path:
            load_secret_file(env_var, path)
    remember_environment()


def _print_traceback() -> None:
    import traceback

    sys.stderr.write(redact(traceback.format_exc()))


def _report(error: FastsdError) -> int:
    if not error.reported:
        sys.stderr.write(f"error: {redact(error.message)}\n")
    if error.hint:
        sys.stderr.write(f"hint: {redact(error.hint)}\n")
    return error.code


def main(argv: list[str] | None = None, *, runner=None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure at run time, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    remember_environment()
    try:
        argv = hoist_global_options(argv)
        args = build_parser(argv).parse_args(argv)
        _load_secrets(args)
        from fastsd.cli.context import Context
        from fastsd.layout import resolve_data_root

        ctx = Context(root=resolve_data_root(args.data), json=args.json, debug=args.debug, runner=runner)
        check_data_root(ctx.root, getattr(args, "data_root_use", None))
        return int(args.handler(args, ctx) or 0)
    except FastsdError as error:
        if debug:
            _print_traceback()
        return _report(error)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except SystemExit as exit_:  # --help / --version
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - the last line of defence prints, never dumps
        if debug:
            _print_traceback()
        known = environment_error(error)  # disk full, permissions...: the cause and a fix, not "a bug"
        if known is not None:
            return _report(known)
        sys.stderr.write(f"error: {redact(f'{type(error).__name__}: {error}')}\n")
        sys.stderr.write("hint: run again with --debug for the traceback, and report it if it is a bug\n")
        return 1
    finally:
        sys.stdout.flush()
