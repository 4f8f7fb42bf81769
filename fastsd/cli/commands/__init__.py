"""Command groups: every module here with a register(subparsers) is a `fastsd` command."""
