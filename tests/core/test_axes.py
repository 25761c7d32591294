"""bench/core/axes.py: each config axis declared once, and what derives from the table (flags, columns, identity,
labels, run ids, docs)."""

import json

import pytest

from bench.core import axes, config
from bench.core.columns import COLUMNS, of_group
from bench.results.io import load_results
from tests.helpers import REFERENCE_RESULTS, ROOT, run_python

NEW_AXIS = """
import sys
from bench.core import axes
axes.AXES.insert(-2, axes.Axis("fused_adam", bool, "fused optimizer step", False, flag="--fused-adam",
                               help="fused AdamW", flag_options={"default": "off", "choices": axes.ON_OFF},
                               before="off", quiet=("off",), label="fused={}"))
from bench import cli
from bench.core import columns
from bench.core import config
import dataclasses
@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig(config.RunConfig):  # the axis's typed field (on config.RunConfig itself in a real change)
    fused_adam: bool = False
args = cli.build_parser().parse_args(["run", "--fused-adam", "on"])
on = RunConfig(model="mlp", datamodule="mnist5k", fused_adam=args.fused_adam == "on")
off = RunConfig(model="mlp", datamodule="mnist5k")
print({"flag": args.fused_adam, "column": "fused_adam" in columns.COLUMNS, "cell": on.columns()["fused_adam"],
       "identity": "fused_adam" in config.IDENTITY and config.identity(on.columns()) != config.identity(off.columns()),
       "label": on.label(), "quiet_label": off.label(), "reproduce": on.reproduce(), "run_ids": on.run_id != off.run_id,
       "docs": "`fused_adam`" in columns.markdown_docs(),
       "before": config.identity({k: v for k, v in off.columns().items() if k != "fused_adam"})
       == config.identity(off.columns())})
"""




def test_the_documented_identity_is_the_code_identity():
    text = (ROOT / "results" / "README.md").read_text()
    assert axes.identity_rule() in text
    rule = axes.identity_rule().split(". The other")[0]
    assert rule.count("`") // 2 - 1 == len(config.IDENTITY)  # minus the `config` of "the `config` columns"
    assert all(f"`{column}`" in rule for column in config.IDENTITY)
    assert set(of_group("config")) == {axis.csv for axis in axes.AXES if axis.csv}


def test_one_name_per_fact_memory_format():
    run = config.RunConfig(model="mlp", datamodule="mnist5k", memory_format="channels_last")
    assert run.columns()["memory_format"] == "channels_last" and "--channels-last" in run.reproduce()
    assert not hasattr(run, "channels_last")


def test_cudnn_tf32_is_an_identity_axis_on_by_default_and_on_in_older_files(tmp_path):
    default = config.RunConfig(model="mlp", datamodule="mnist5k")
    off = config.RunConfig(model="mlp", datamodule="mnist5k", cudnn_tf32=False)
    assert default.columns()["cudnn_tf32"] == "on" and off.columns()["cudnn_tf32"] == "off"
    assert config.identity(default.columns()) != config.identity(off.columns())
    assert "cudnn.tf32=off" in off.label() and "tf32" not in default.label()
    assert "--cudnn-tf32 off" in off.reproduce() and default.run_id != off.run_id
    for path in REFERENCE_RESULTS:  # schema 3 files: read as on, the same configs as before
        frame = load_results(path)
        assert set(frame["cudnn_tf32"]) == {"on"} and "tf32" not in frame["config_label"][0]


def test_the_run_flags_come_from_the_axes():
    from bench.cli import build_parser

    run = build_parser().parse_args(["run", "--cudnn-tf32", "off", "--channels-last", "--num-nodes", "2"])
    assert (run.cudnn_tf32, run.memory_format, run.num_nodes) == ("off", True, 2)
    assert json.loads(config.args_cell({"b": 1, "a": 2})) == {"a": 2, "b": 1}
    assert [c for c in COLUMNS if c in config.IDENTITY] == list(config.IDENTITY)


@pytest.mark.integration
def test_a_new_boolean_axis_is_one_table_entry_and_its_field():
    seen = eval(run_python(NEW_AXIS).strip().splitlines()[-1])  # a dict literal printed by the child
    assert seen["flag"] == "on" and seen["column"] and seen["cell"] == "on" and seen["identity"]
    assert "fused=on" in seen["label"] and "fused" not in seen["quiet_label"]
    assert "--fused-adam on" in seen["reproduce"] and seen["run_ids"] and seen["docs"] and seen["before"]
