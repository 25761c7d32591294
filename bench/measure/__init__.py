"""Measurement pieces (step: a trained module to its speed, inference, cost and memory columns).

Each piece returns its own typed result whose `columns()` are row cells; bench/session.py assembles the row.
"""
