"""Processes that outlive their starter, for the tests that a run's process tree ends with it (no torch here: a
subprocess that imports this starts in milliseconds)."""

import subprocess


def start_daemons(tag: str) -> None:
    """Two `sleep 600.<tag>` that outlive their starter: one double-forked into a new session (`setsid`, then a shell
    that backgrounds it and exits: its parent is gone at once), one a plain child in the run's process group."""
    subprocess.run(["setsid", "sh", "-c", f"sleep 600.{tag} > /dev/null 2>&1 &"], check=True)
    subprocess.Popen(["sleep", f"600.{tag}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def daemons_left(tag: str) -> list[int]:
    """The pids of `sleep 600.<tag>` processes still alive (zombies are not)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["cmdline"] == ["sleep", f"600.{tag}"] and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process.pid)
    return found
