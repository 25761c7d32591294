"""Planning (step: the command line -> validated configs; nothing runs, no file is touched)."""
