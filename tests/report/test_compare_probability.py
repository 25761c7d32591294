"""compare's probability that the new side is better, from the repeats (issue 31, deliverable 3's compare part):
made-up rows, as tests/test_compare.py's."""

from bench.cli import main
from tests.results_fixtures import make_row, write_csv


def compare(tmp_path, capsys, base: list[float], new: list[float], column: str = "train_samples_per_s") -> str:
    """compare's P(new better) cell for `column` between two sets of repeats."""
    rows = [[make_row(repeat=i, **{column: v}) for i, v in enumerate(side)] for side in (base, new)]
    main(["compare", str(write_csv(tmp_path / "base.csv", rows[0])), str(write_csv(tmp_path / "new.csv", rows[1]))])
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    (line,) = [line for line in out.splitlines() if column in line]
    start = header.index("P(new better)")
    return line[start:start + len("P(new better)")].strip()


def test_every_new_run_faster_is_probability_one(tmp_path, capsys):
    assert compare(tmp_path, capsys, [1000.0, 1010.0, 990.0], [1300.0, 1310.0, 1290.0]) == "1.00"


def test_interleaved_repeats_are_a_coin_flip(tmp_path, capsys):
    # pairs new beats: 1005 beats 1000 and 990 (2), 995 beats 990 (1), 1015 beats all three (3): 6 of 9
    assert compare(tmp_path, capsys, [1000.0, 1010.0, 990.0], [1005.0, 995.0, 1015.0]) == "0.67"


def test_lower_is_better_for_a_latency(tmp_path, capsys):
    assert compare(tmp_path, capsys, [10.0, 11.0], [8.0, 9.0], "latency_p50_ms") == "1.00"


def test_one_run_a_side_has_no_probability(tmp_path, capsys):
    assert compare(tmp_path, capsys, [1000.0], [1300.0]) == ""
