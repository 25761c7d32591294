"""bench/results/records.py: a crash's partial last row cut (and only it) and a full disk's (issue 13)."""

import resource

import pytest

from bench.cli import main
from bench.core.columns import COLUMNS
from bench.core.config import RunConfig
from bench.core.errors import ResultsError
from bench.results.io import append_row, read_rows
from bench.results.records import parse_records, repair_partial_last_line
from tests.helpers import FAKE, one_line_error, sweep_args
from tests.results_fixtures import write_csv


# ------------------------------------------------------------------------------------- a partial last line
def fake_row(repeat, **cells):
    config = RunConfig(model=FAKE, datamodule="synthetic", batch_size=16, profile="smoke", seed=repeat, repeat=repeat)
    return config.columns() | {"status": "ok", "schema_version": 3, "train_samples_per_s": 100.0,
                               "started_at": "fixture", "reproduce": "fixture"} | cells


def cut_file(tmp_path, where):
    """A results CSV of two rows whose second was cut by a crash at `where`; returns (path, the intact bytes)."""
    path = tmp_path / "sweep" / "results.csv"
    path.parent.mkdir()
    append_row(path, fake_row(0))
    intact = path.read_bytes()
    append_row(path, fake_row(1, message="first line of a reason\nsecond line"))
    last = path.read_bytes()[len(intact):].decode()
    cut = {"inside the config columns": last.index("synthetic"),
           "after the config columns": last.index(",ok,") + 4,
           "after a newline inside a quoted cell": last.index("\n") + 1}[where]
    path.write_bytes(intact + last[:cut].encode())
    return path, intact


CUTS = ["inside the config columns", "after the config columns", "after a newline inside a quoted cell"]


@pytest.mark.parametrize("where", CUTS)
def test_readers_reject_a_partial_row_with_a_one_line_reason(tmp_path, capsys, where):
    path, _ = cut_file(tmp_path, where)
    good = write_csv(tmp_path / "good.csv", [fake_row(0), fake_row(1)])
    assert main(["compare", str(good), str(path)]) == 2
    one_line_error(capsys.readouterr().err, "fields")
    assert main(["report", str(path), "--out", str(tmp_path / "report")]) == 2
    one_line_error(capsys.readouterr().err, "fields")


@pytest.mark.parametrize("where", CUTS)
def test_repair_keeps_the_finished_rows_and_drops_only_the_partial_one(tmp_path, where):
    path, intact = cut_file(tmp_path, where)
    assert repair_partial_last_line(path)
    assert path.read_bytes() == intact
    assert not repair_partial_last_line(path)  # nothing more to cut


def test_a_cut_header_is_finished_not_emptied(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text(",".join(COLUMNS)[:100])
    assert repair_partial_last_line(path) and path.read_bytes() == (",".join(COLUMNS) + "\r\n").encode()
    assert not repair_partial_last_line(path)  # nothing more to do


@pytest.mark.integration
def test_resume_reruns_the_partial_row_once(tmp_path):
    path, intact = cut_file(tmp_path, "after the config columns")
    assert main(sweep_args(path.parent, "--repeats", "2", "--resume")) == 0
    rows = read_rows(path)
    assert [(r["repeat"], r["started_at"] == "fixture") for r in rows] == [("0", True), ("1", False)]
    assert path.read_bytes().startswith(intact)


# -------------------------------------------------------------------------------------------- full disk
@pytest.fixture
def small_files():
    """Writes past a size fail with EFBIG, as on a full disk (Python ignores SIGXFSZ, so they raise)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)

    def limit(size):
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))

    yield limit
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_row_cut_by_a_full_disk_is_repaired_and_the_rows_before_it_kept(tmp_path, small_files):
    path = tmp_path / "results.csv"
    append_row(path, fake_row(0))
    intact = path.read_bytes()
    small_files(len(intact) + 100)  # room for a part of the next row only
    with pytest.raises(OSError, match="File too large"):
        append_row(path, fake_row(1))
    small_files(resource.RLIM_INFINITY)
    assert len(path.read_bytes()) > len(intact)
    assert repair_partial_last_line(path) and path.read_bytes() == intact


def test_a_utf16_file_without_a_byte_order_mark_is_called_what_it_is_and_never_cut(tmp_path):
    path = tmp_path / "results.csv"
    data = (",".join(COLUMNS) + "\r\n" + ",".join(["x"] * len(COLUMNS)) + "\r\n").encode("utf-16-le")
    path.write_bytes(data)
    with pytest.raises(ResultsError, match="NUL characters: UTF-16 or binary"):
        parse_records(path)
    assert not repair_partial_last_line(path) and path.read_bytes() == data
