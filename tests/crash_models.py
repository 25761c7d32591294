"""A tiny model that takes its own process (or its parent) down, or leaves processes behind, for the launcher's
isolation tests."""

import ctypes
import os
import signal
import time
from pathlib import Path

from tests.daemons import start_daemons
from tests.fake_models import FakeNet


class CrashNet(FakeNet):
    """FakeNet whose first training step kills a process: mode in segfault | exit | sigkill | kill_ray_worker; or
    leaves daemons behind (`daemons:<tag>`, then trains on; `daemons_then_hang:<tag>`, then sleeps past any limit)."""

    def training_step(self, batch, batch_idx):
        mode = self.hparams.mode
        if mode.startswith("daemons") and batch_idx == 0:
            start_daemons(mode.partition(":")[2])
            if mode.startswith("daemons_then_hang"):
                time.sleep(120)
        if mode == "segfault":
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        elif mode == "exit":
            os._exit(3)  # no exception, no row: the launcher's exit code is all that is left
        elif mode == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's out-of-memory killer does
        elif mode == "kill_ray_worker":
            os.kill(ray_worker_pid(), signal.SIGKILL)  # as a node's OOM killer or a lost node would
            time.sleep(60)
        return super().training_step(batch, batch_idx)


def ray_worker_pid() -> int:
    """The Ray worker this run descends from (Ray names its workers `ray::<task>`)."""
    pid = os.getppid()
    while pid > 1 and not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::"):
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return pid

