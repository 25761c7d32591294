"""Core facts (step: the tables every later step keys on: axes and the values each may take, profiles, configs,
columns, rows, errors, statistics; no torch)."""
