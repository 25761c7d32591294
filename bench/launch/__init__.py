"""Launching (step: configs -> one child process per config, here or on Ray -> rows to the one writer)."""
