"""Developer benchmarks of dnnbench itself (not packaged): `python -m benchmarks.<name>` from the repo root."""
