"""The harness probe compares like with like: the expert loop steps the optimizer the module configured (its fused or
for-each AdamW as a run has it) and the model-cost ratio puts device-busy time on both sides."""

from __future__ import annotations

from unittest import mock

import torch

from bench.run import overhead
from bench.run.overhead import Overhead, runner_config


def test_model_cost_over_expert_uses_the_experts_device_time_not_its_wall_clock():
    measured = Overhead(runner=[90.0], device_cost=[200.0], bare=[95.0], expert=[100.0],
                        expert_device_cost=[210.0])
    assert measured.device_over_expert() == 200.0 / 210.0  # busy over busy, not 2.0 (busy over wall)
    assert measured.runner_over_expert() == 0.9


def test_the_expert_steps_the_optimizer_the_module_configured():
    from tests.probe_models import ProbeNet

    model, dm = overhead.build("tests.probe_models:ProbeNet", torch.device("cpu"), {})
    assert isinstance(model, ProbeNet)
    configured = mock.create_autospec(torch.optim.AdamW, instance=True)
    step = overhead.plain_step(model, [configured])
    step(next(overhead.batches_forever(dm, torch.device("cpu"))), 0)
    configured.zero_grad.assert_called_once_with(set_to_none=True)
    configured.step.assert_called_once_with()


def test_alternate_measures_both_sides_of_each_ratio(tmp_path):
    config = runner_config("tests.probe_models:ProbeNet", "quick", "cpu", {})
    measured = overhead.alternate(config, 1, tmp_path)
    assert measured.expert[0] > 0 and measured.expert_device_cost[0] > 0 and measured.device_cost[0] > 0
    assert measured.device_over_expert() == measured.device_cost[0] / measured.expert_device_cost[0]
