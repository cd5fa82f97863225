"""The ``overseer`` command line: thin parsers over library calls."""
