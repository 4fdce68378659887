"""Pure domain of the rectification case engine: no I/O, no Temporal imports."""
