"""Core facts (step: the tables every later step keys on: axes, profiles, configs, columns, rows, errors,
statistics; no torch)."""
