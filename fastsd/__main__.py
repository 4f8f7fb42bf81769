"""`python -m fastsd` runs the CLI."""

from fastsd.cli.main import main

raise SystemExit(main())
