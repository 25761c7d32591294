"""MLPerf's convergence gate in compare and history: real mlp runs (tests/data/convergence/, made once by the
commands in its README: 5 reference seeds, 5 of a tenth of the learning rate, 5 other seeds) for the bar, made-up rows
for the rule's edges (invalid sets, too few reference seeds)."""

from pathlib import Path

from bench.cli import main
from tests.results_fixtures import make_row, write_csv

DATA = Path(__file__).resolve().parents[1] / "data" / "convergence"
REFERENCE, OTHER_SEEDS, TENTH_LR = (DATA / name / "results.csv" for name in ("reference", "other-seeds", "tenth-lr"))


def gate_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "(MLPerf RCP)" in line]


def test_a_tenth_of_the_learning_rate_converges_slower_a_regression(capsys):
    assert main(["compare", str(REFERENCE), str(TENTH_LR)]) == 1
    lines = gate_lines(capsys.readouterr().out)
    assert len(lines) == 2 and all("REGRESSION" in line for line in lines)  # epochs and steps to target


def test_other_seeds_of_the_reference_recipe_pass(capsys):
    assert main(["compare", str(REFERENCE), str(OTHER_SEEDS)]) == 0
    lines = gate_lines(capsys.readouterr().out)
    assert len(lines) == 2 and all(line.rstrip().endswith("same") for line in lines)


def test_converging_faster_than_the_reference_is_flagged(capsys):
    assert main(["compare", str(TENTH_LR), str(REFERENCE)]) == 0  # a flag for review, not a failure
    out = capsys.readouterr().out
    assert all("check the recipe" in line for line in gate_lines(out))
    assert "converges faster than its reference: check the recipe" in out


def test_history_gates_each_commit_against_the_reference(tmp_path, capsys):
    code = main(["history", str(TENTH_LR), "--reference", str(REFERENCE.parent), "--out", str(tmp_path),
                 "--fail-on-regression"])
    out = capsys.readouterr().out
    assert code == 1 and "1 convergence gate(s) failed" not in out and "2 convergence gate(s) failed" in out
    assert "Convergence against the reference" in (tmp_path / "index.html").read_text()


def runs(epochs: list[int | None], seed: int = 0) -> list[dict]:
    """Made-up rows of one config: None is a run that did not reach the target."""
    return [make_row(repeat=seed + i, epochs=e if e is not None else 20, steps=(e if e is not None else 20) * 10,
                     reached_target="no" if e is None else "yes") for i, e in enumerate(epochs)]


def compare_rows(tmp_path: Path, capsys, base: list[dict], new: list[dict]) -> tuple[int, list[str]]:
    code = main(["compare", str(write_csv(tmp_path / "base.csv", base)), str(write_csv(tmp_path / "new.csv", new))])
    return code, gate_lines(capsys.readouterr().out)


def test_two_runs_that_missed_the_target_make_the_set_invalid(tmp_path, capsys):
    code, lines = compare_rows(tmp_path, capsys, runs([4, 5, 5, 6, 4]), runs([4, None, 5, None, 5], seed=5))
    assert code == 1 and len(lines) == 2 and all("INVALID" in line for line in lines)


def test_one_run_that_missed_is_dropped_as_the_slowest(tmp_path, capsys):
    code, lines = compare_rows(tmp_path, capsys, runs([4, 5, 5, 6, 4]), runs([4, None, 5, 5, 5], seed=5))
    assert len(lines) == 2 and all(line.rstrip().endswith("same") for line in lines) and "4 of 5 reached" in lines[0]


def test_fewer_than_five_reference_runs_gate_nothing(tmp_path, capsys):
    code, lines = compare_rows(tmp_path, capsys, runs([4, 5, 5, 6]), runs([9, 9, 10, 9], seed=5))
    assert lines == []
