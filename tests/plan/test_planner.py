"""bench/plan/planner.py: every bad input is one line on stderr and exit 2, before any run starts and before the
sweep folder exists (the one table of bad `dnnbench run` inputs)."""

import pytest

from bench.cli import main
from tests.helpers import FAKE

BAD_INPUT = [
    # the lists: each names at least one value, none twice
    (["--data", ","], "--data is empty"),
    (["--precisions", ","], "--precisions is empty"),
    (["--batch-sizes", ","], "--batch-sizes is empty"),
    (["--devices", ","], "--devices is empty"),
    (["--models", ","], "--models is empty"),
    (["--compile", ","], "--compile is empty"),
    (["--models", f"{FAKE},{FAKE}"], "more than once"),
    (["--models", "mlp,lightning_modules.mlp:MLP"], "the same model"),
    (["--precisions", "32-true,32-true"], "more than once"),
    (["--devices", "cpu,cpu:1"], "more than once"),
    (["--batch-sizes", "16,016"], "more than once"),
    (["--data", "synthetic,synthetic"], "more than once"),
    (["--model-arg", "foo=1"], "no argument 'foo'"),
    (["--models", "tests.fake_models:NoFullEpochsNet"], "names no epochs for profile(s) full"),
    (["--models", "mlp", "--model-arg", "dropout=abc"], "dropout='abc'"),
    (["--models", "mlp", "--model-arg", "hidden_sizes=3.5"], "hidden_sizes=3.5"),
    (["--data-arg", "batch_size=64"], "--batch-sizes"),
    (["--data-arg", "seed=1"], "--seed"),
    (["--data", "synthetic", "--data-arg", "shape=abc"], "shape='abc'"),
    (["--data", "synthetic", "--data-arg", "shape=(1,2,3,4)"], "must be (C, H, W)"),
    (["--data", "synthetic", "--data-arg", "colour=1"], "no argument 'colour'"),
    (["--time-limit", "0"], "--time-limit"),
    (["--time-limit", "-5"], "--time-limit"),
    (["--time-limit", "nan"], "--time-limit"),
    (["--time-limit", "inf"], "--time-limit"),
    (["--peak-tflops", "-1"], "--peak-tflops"),
    (["--peak-tflops", "nan"], "--peak-tflops"),
    (["--repeats", "0"], "--repeats"),
    (["--seed", "-1"], "--seed"),
    (["--models", "tests.fake_models:NotAModule"], "not a LightningModule"),
    # names the registries and the plan do not know
    (["--models", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    (["--models", FAKE, "--data", "imagenet"], "unknown datamodule 'imagenet'"),
    (["--models", FAKE, "--precisions", "8-bit"], "unknown precision"),
    (["--models", FAKE, "--devices", "tpu"], "unknown device 'tpu'"),
    (["--models", FAKE, "--data", "seq2seq"], "takes image data, but datamodule 'seq2seq'"),
    (["--models", FAKE, "--compile", "maybe"], "--compile takes"),
    (["--models", FAKE, "--batch-sizes", "0"], "positive integers"),
    (["--models", "no.such.module:Net"], "cannot be imported"),
    # sizes and batch sizes
    (["--models", "mlp", "--sizes", "huge"], "--sizes takes"),
    (["--models", FAKE, "--sizes", "large"], "declares no 'large' size"),
    (["--models", "mlp", "--batch-sizes", "auto", "--devices", "cpu:2"], "searches on one device"),
    (["--models", "mlp", "--batch-sizes", "most"], "positive integers or auto"),
    # execution
    (["--parallel", "0"], "--parallel takes a positive integer or auto"),
    (["--parallel", "two"], "--parallel takes a positive integer or auto"),
    (["--ray-address", "auto"], "--ray-address needs --executor ray"),
    (["--executor", "ray", "--parallel", "2"], "--parallel is for --executor local"),
    # numbers and paths that would reach the standard library or a run unchecked (issue 23)
    (["--data", "synthetic", "--data-arg", "shape=(0,28,28)"], "must be at least 1"),
    (["--data", "synthetic", "--data-arg", "num_samples=0"], "must be at least 1"),
    (["--out", "LOOP"], "cannot be used"),
    (["--seed", str(2**32 - 1), "--repeats", "2"], "the last repeat's too"),
    (["--repeats", "1000000000"], "runs in one sweep"),
    # --repeats auto and its settings (issue 31)
    (["--repeats", "auto", "--precision-target", "0"], "--precision-target takes a percentage above 0"),
    (["--repeats", "auto", "--precision-target", "-5"], "--precision-target takes a percentage above 0"),
    (["--repeats", "auto", "--precision-target", "nan"], "--precision-target takes a percentage above 0"),
    (["--repeats", "auto", "--precision-target", "100"], "--precision-target takes a percentage above 0"),
    (["--repeats", "auto", "--max-repeats", "1"], "--max-repeats must be at least 2"),
    (["--repeats", "auto", "--max-repeat-seconds", "0"], "--max-repeat-seconds must be a positive finite"),
    (["--repeats", "auto", "--max-repeat-seconds", "inf"], "--max-repeat-seconds must be a positive finite"),
    (["--precision-target", "5"], "--precision-target go(es) with --repeats auto"),
    (["--repeats", "3", "--max-repeats", "5"], "--max-repeats go(es) with --repeats auto"),
    (["--seed", str(2**32 - 5), "--repeats", "auto"], "the last repeat's too"),
]


@pytest.mark.parametrize("args, fragment", BAD_INPUT)
def test_bad_input_exits_2_in_one_line_before_anything_runs(tmp_path, capsys, args, fragment):
    out = tmp_path / "out"
    loop = tmp_path / "loop"
    loop.symlink_to(loop)  # a symlink to itself: resolving it never ends
    args = [str(loop / "out") if arg == "LOOP" else arg for arg in args]  # a later --out wins over the base's
    base = ["run", "--models", FAKE, "--profile", "smoke", "--wandb", "disabled", "--out", str(out)]
    assert main(base + args) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dnnbench: error:") and fragment in lines[0], lines
    assert not out.exists()


def test_repeats_auto_plans_each_configs_first_process_and_carries_the_rule(tmp_path):
    import argparse

    from bench.cli import build_parser
    from bench.core.auto_repeats import AutoRepeats
    from bench.plan.planner import plan

    args = build_parser().parse_args(["run", "--models", "mlp,cnn", "--profile", "smoke", "--wandb", "disabled",
                                      "--out", str(tmp_path), "--repeats", "auto", "--max-repeats", "4"])
    assert isinstance(args, argparse.Namespace)
    planned = plan(args)
    assert [(c.model, c.repeat, c.seed) for c in planned.configs] == [("mlp", 0, 0), ("cnn", 0, 0)]
    assert planned.auto == AutoRepeats(None, 4, 1800.0)
    assert planned.auto.target(planned.configs[0]) == 5  # a CPU's default

