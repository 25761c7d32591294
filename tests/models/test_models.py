"""Contract tests parametrised over the model registry: a 13th model file is picked up with no edit here."""

import lightning as L
import pytest
import torch

import datamodules
import lightning_modules
from datamodules import ConfigError
from lightning_modules import BenchSpec, build_model
from tests.helpers import quiet_trainer

MODEL_NAMES = lightning_modules.names()
# One datamodule per kind, for pairing checks.
DATA_BY_KIND = {"image": "mnist5k", "sequence": "seq_mnist5k", "seq2seq": "seq2seq", "rl": "cartpole"}


def smoke_setup(name, batch_size=8):
    cls = lightning_modules.get(name)
    spec = cls.bench
    L.seed_everything(0, verbose=False)
    dm = datamodules.get(spec.classic.datamodule)(batch_size=batch_size, seed=0, **spec.classic.data)
    model = build_model(cls, dm, smoke=True)
    return cls, dm, model


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def test_all_twelve_families_are_registered():
    expected = {"mlp", "cnn", "rnn", "lstm", "dbn", "gan", "autoencoder", "resnet", "capsnet", "transformer",
                "attention", "dqn"}
    assert expected <= set(MODEL_NAMES)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_spec_is_complete_and_default_data_fits(name):
    cls = lightning_modules.get(name)
    spec = cls.bench
    assert isinstance(spec, BenchSpec)
    assert spec.classic.datamodule in datamodules.names()
    assert spec.metric_direction in ("max", "min")
    assert spec.classic.batch_size > 0
    assert all(spec.epochs[p] >= 1 for p in ("smoke", "quick", "standard", "full"))
    assert spec.epochs["standard"] >= spec.epochs["quick"]
    assert callable(getattr(cls, "example_input", None))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_example_input_forward_is_finite_with_batch_first_output(name):
    _, _, model = smoke_setup(name)
    model.eval()
    with torch.no_grad():
        out = model(*as_tuple(model.example_input(3)))
    first = out[0] if isinstance(out, (tuple, list)) else out
    assert first.shape[0] == 3
    assert torch.isfinite(first.float()).all()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_fast_dev_run_trains_tests_and_reaches_every_parameter(name):
    cls, dm, model = smoke_setup(name)

    class GradientProbe(L.Callback):
        # Records which parameters carried a gradient whenever an optimizer was about to step.
        def __init__(self):
            self.with_grad, self.steps, self.losses = set(), 0, []

        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            self.steps += 1
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None and torch.isfinite(p.grad).all():
                        self.with_grad.add(id(p))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            loss = outputs["loss"] if isinstance(outputs, dict) else outputs
            self.losses.append(loss)

    probe = GradientProbe()
    trainer = quiet_trainer(fast_dev_run=True, callbacks=[probe])
    trainer.fit(model, dm)
    results = trainer.test(model, dm, verbose=False)
    assert f"test/{cls.bench.metric}" in results[0]
    assert probe.losses and all(torch.is_tensor(x) and torch.isfinite(x).all() for x in probe.losses), \
        "training_step must return a finite loss tensor"
    if model.automatic_optimization:
        # Every trainable parameter must get a gradient from the loss (no dead branches).
        missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in probe.with_grad]
        assert not missing, f"parameters without gradient: {missing}"
    else:
        assert probe.steps >= 1, "manual optimization must step an optimizer"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_hyperparameters_round_trip_through_a_checkpoint(name, tmp_path):
    cls, dm, model = smoke_setup(name)
    trainer = quiet_trainer(fast_dev_run=True)
    trainer.fit(model, dm)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = cls.load_from_checkpoint(path, map_location="cpu")
    assert dict(restored.hparams) == dict(model.hparams)
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value), key


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_incompatible_datamodule_is_a_clear_error(name):
    cls = lightning_modules.get(name)
    other_kind = next(kind for kind in DATA_BY_KIND if kind not in cls.bench.accepts)
    if DATA_BY_KIND[other_kind] not in datamodules.names():
        pytest.skip(f"no {other_kind} datamodule registered")
    dm = datamodules.get(DATA_BY_KIND[other_kind])()
    with pytest.raises(ConfigError, match=f"model '{name}' takes .* but datamodule"):
        build_model(cls, dm)


def test_unknown_hyperparameter_is_a_clear_error():
    if "mlp" not in MODEL_NAMES:
        pytest.skip("mlp not registered")
    with pytest.raises(ConfigError, match="no hyper-parameter"):
        build_model(lightning_modules.get("mlp"), datamodules.get("mnist5k")(), hiden_sizes=(3,))
