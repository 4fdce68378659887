"""Benchmarks of the case engine on the embedded defaults: `python -m bench.run` (see bench/README.md)."""
