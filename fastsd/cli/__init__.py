"""The fastsd command line: light to import, one module per command group."""
