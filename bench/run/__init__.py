"""One run (step: a config in its own process -> the session, its measurements and its inference curve -> one row)."""
