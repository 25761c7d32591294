"""The machine check (step: is this machine fit to benchmark on, and does the harness add nothing here?)."""
