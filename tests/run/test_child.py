"""The child's statuses (issue 23): running out of host memory is `oom`, as on a GPU."""

import pytest

from bench.core.columns import Status
from bench.run.child import failure_status


@pytest.mark.parametrize("exc", [
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4000000000000 bytes. "
                 "Error code 12 (Cannot allocate memory)"),
    MemoryError(),
])
def test_host_out_of_memory_is_an_oom_row(exc):
    assert failure_status(exc) == Status.OOM


def test_other_errors_stay_errors():
    assert failure_status(RuntimeError("boom")) == Status.ERROR
