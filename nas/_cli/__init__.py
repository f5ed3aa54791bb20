"""The ``nas`` command line: one module per command group, each a thin layer."""
