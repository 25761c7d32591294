"""Behaviour of dbn, gan, autoencoder and dqn beyond the registry-wide contract tests."""

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import datamodules
import lightning_modules
from datamodules.cartpole import ReplayBuffer
from lightning_modules import build_model
from lightning_modules.base import cache_dir
from lightning_modules.dbn import RBM, contrastive_divergence_loss
from tests.helpers import quiet_trainer, smoke_model

trainer = quiet_trainer


def mnist_pixels(n=64):
    dm = datamodules.get("mnist5k")(normalize=False, seed=0)
    dm.setup()
    return dm.train_set.tensors[0][:n].flatten(1)


# ----------------------------------------------------------------------------- dbn


def test_one_cd_step_lowers_reconstruction_error_on_a_fixed_batch():
    torch.manual_seed(0)
    v = mnist_pixels()
    rbm = RBM(784, 64)
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.1)
    before = rbm.reconstruction_error(v).item()
    v_model = rbm.gibbs_chain(v, k=1)
    contrastive_divergence_loss(rbm, v, v_model).backward()
    optimizer.step()
    assert rbm.reconstruction_error(v).item() < before


def test_cd_training_opens_a_free_energy_gap_between_data_and_noise():
    torch.manual_seed(0)
    v = mnist_pixels(256)
    rbm = RBM(784, 64)
    optimizer = torch.optim.SGD(rbm.parameters(), lr=0.05, momentum=0.5)
    noise = torch.bernoulli(torch.full_like(v, v.mean().item()))
    gap_before = (rbm.free_energy(noise) - rbm.free_energy(v)).mean().item()
    for _ in range(50):
        optimizer.zero_grad()
        contrastive_divergence_loss(rbm, v, rbm.gibbs_chain(v, 1)).backward()
        optimizer.step()
    assert (rbm.free_energy(noise) - rbm.free_energy(v)).mean().item() > gap_before + 10


def test_fine_tuning_starts_from_the_pretrained_weights():
    L.seed_everything(0, verbose=False)
    dm = datamodules.get("mnist5k")(batch_size=64, normalize=False)
    model = build_model(lightning_modules.get("dbn"), dm, hidden_sizes=(32, 16), pretrain_epochs=1)
    initial = [rbm.weight.detach().clone() for rbm in model.rbms]
    snapshots = {}

    class Snapshot(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            snapshots[trainer.current_epoch] = [rbm.weight.detach().clone() for rbm in pl_module.rbms]

        def on_train_epoch_start(self, trainer, pl_module):
            if pl_module.phase() == len(pl_module.rbms):
                snapshots["finetune_start"] = [rbm.weight.detach().clone() for rbm in pl_module.rbms]

    trainer(max_epochs=3, limit_train_batches=10, limit_val_batches=1, callbacks=[Snapshot()]).fit(model, dm)
    assert not torch.equal(snapshots[0][0], initial[0])  # epoch 0 trained RBM 0 ...
    assert torch.equal(snapshots[0][1], initial[1])  # ... and left RBM 1 alone
    assert not torch.equal(snapshots[1][1], initial[1])  # epoch 1 trained RBM 1
    for pretrained, finetune in zip(snapshots[1], snapshots["finetune_start"]):
        assert torch.equal(pretrained, finetune)  # fine-tuning began from the pre-trained stack
    x = torch.rand(4, 1, 28, 28)
    h = torch.sigmoid(F.linear(torch.sigmoid(F.linear(x.flatten(1), model.rbms[0].weight, model.rbms[0].hidden_bias)),
                               model.rbms[1].weight, model.rbms[1].hidden_bias))
    torch.testing.assert_close(model(x), model.head(h))  # the classifier is the RBM stack itself


def test_persistent_cd_chains_survive_a_short_last_batch():
    L.seed_everything(0, verbose=False)
    dm = datamodules.get("mnist5k")(batch_size=48, normalize=False)  # 4000 train = 83 x 48 + a batch of 16
    model = build_model(lightning_modules.get("dbn"), dm, hidden_sizes=(32,), persistent=True, pretrain_epochs=1)
    trainer(max_epochs=2, limit_val_batches=0).fit(model, dm)  # epoch 0 pre-trains, epoch 1 fine-tunes
    chains = model.chains[0]
    assert chains.shape == (48, 784)  # the short batch advanced only its share; the other chains were kept
    assert set(chains.unique().tolist()) <= {0.0, 1.0}  # still binary Gibbs states
    assert 0.02 < chains.mean() < 0.5  # the model's samples look like sparse digits, not all-on or all-off


# ----------------------------------------------------------------------------- gan


def test_gan_steps_both_optimizers_every_batch_and_generates_data_shaped_images():
    L.seed_everything(0, verbose=False)
    cls = lightning_modules.get("gan")
    dm = datamodules.get("mnist5k")(batch_size=16, **cls.bench.classic.data)
    model = build_model(cls, dm, smoke=True)
    generator_before = [p.detach().clone() for p in model.generator.parameters()]
    discriminator_before = [p.detach().clone() for p in model.discriminator.parameters()]
    steps = []

    class CountSteps(L.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            steps.append(trainer.optimizers.index(optimizer))

    trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1, callbacks=[CountSteps()]).fit(model, dm)
    assert steps == [1, 0] * 3  # discriminator then generator, every batch
    assert all(not torch.equal(a, b) for a, b in zip(generator_before, model.generator.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(discriminator_before, model.discriminator.parameters()))
    model.eval()
    with torch.no_grad():
        images = model(model.example_input(8))
    assert images.shape == (8, 1, 28, 28)
    assert images.min() >= 0 and images.max() <= 1  # the data's pixel range


def test_gan_handles_rgb_32x32():
    model = smoke_model("gan", input_shape=(3, 32, 32)).eval()
    assert model(model.example_input(2)).shape == (2, 3, 32, 32)


def test_conditional_gan_uses_the_label_and_the_plain_dcgan_has_none():
    torch.manual_seed(0)
    smoke = lightning_modules.get("gan").bench.classic.smoke_model
    model = lightning_modules.get("gan")(**smoke).eval()  # conditional by default
    z = torch.randn(4, model.hparams.latent_dim)
    with torch.no_grad():
        as_zero, as_seven = model(z, torch.zeros(4, dtype=torch.long)), model(z, torch.full((4,), 7))
        assert not torch.allclose(as_zero, as_seven)  # the label steers the generator
        torch.testing.assert_close(model(z), model(z, torch.tensor([0, 1, 2, 3])))  # default: classes in turn
        images = torch.rand(4, 1, 28, 28)
        assert not torch.allclose(model.discriminator(images, torch.zeros(4, dtype=torch.long)),
                                  model.discriminator(images, torch.full((4,), 7)))  # and the discriminator
    plain = lightning_modules.get("gan")(conditional=False, **smoke)
    assert plain.generator.project[0].in_features == plain.hparams.latent_dim
    assert plain.discriminator.label_embedding is None


# ----------------------------------------------------------------------------- autoencoder


def test_autoencoder_loss_falls_on_a_fixed_batch_for_both_variants():
    x = mnist_pixels(32).view(-1, 1, 28, 28)
    for variant in ("dense", "conv"):
        torch.manual_seed(0)
        model = lightning_modules.get("autoencoder")(variant=variant)
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
        first = F.mse_loss(model(x), x).item()
        for _ in range(20):
            loss = F.mse_loss(model(x), x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        assert F.mse_loss(model(x), x).item() < 0.7 * first, variant
        assert model(x).shape == x.shape


# ----------------------------------------------------------------------------- dqn


def test_replay_buffer_never_exceeds_capacity_and_keeps_the_newest():
    buffer = ReplayBuffer(capacity=10, obs_dim=4)
    for step in range(25):
        buffer.push(np.full(4, step), step % 2, 1.0, np.full(4, step + 1), False)
        assert len(buffer) == min(step + 1, 10)
    assert sorted(buffer.obs[:, 0].tolist()) == list(range(15, 25))
    obs, actions, rewards, next_obs, dones = buffer.sample(6, np.random.default_rng(0))
    assert obs.shape == (6, 4) and actions.dtype == torch.int64 and torch.equal(next_obs[:, 0], obs[:, 0] + 1)


def test_cartpole_stream_is_deterministic_under_a_seed():
    def first_batch(seed):
        dm = datamodules.get("cartpole")(seed=seed, warmup_steps=200, steps_per_epoch=5, batch_size=8)
        dm.setup()
        return next(iter(dm.train_dataloader()))

    assert all(torch.equal(a, b) for a, b in zip(first_batch(1), first_batch(1)))
    assert not torch.equal(first_batch(1)[0], first_batch(2)[0])


def test_target_network_updates_on_schedule():
    L.seed_everything(0, verbose=False)
    dm = datamodules.get("cartpole")(warmup_steps=100, steps_per_epoch=25, val_episodes=1, test_episodes=1)
    model = build_model(lightning_modules.get("dqn"), dm, target_update_steps=10, hidden=16)
    synced = []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            same = all(torch.equal(a, b) for a, b in zip(pl_module.net.parameters(), pl_module.target.parameters()))
            synced.append((trainer.global_step, same))

    trainer(max_epochs=1, limit_val_batches=0, callbacks=[Probe()]).fit(model, dm)
    # Before each step: a copy at the start and after every 10th optimizer step, stale in between.
    assert [step for step, same in synced if same] == [0, 10, 20]
    assert len(synced) == 25


def test_dqn_logs_once_per_logging_interval_what_the_steps_between_did():
    L.seed_everything(0, verbose=False)
    dm = datamodules.get("cartpole")(warmup_steps=100, steps_per_epoch=50, val_episodes=1, test_episodes=1)
    model = build_model(lightning_modules.get("dqn"), dm, hidden=16, epsilon_decay_steps=10_000)
    logged, losses = [], []
    log = model.log
    model.log = lambda name, value, **kwargs: (logged.append((model.global_step, name, float(value))),
                                               log(name, value, **kwargs))

    class StepLosses(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer(max_epochs=1, limit_val_batches=0, log_every_n_steps=20, callbacks=[StepLosses()]).fit(model, dm)
    assert len(losses) == 50 and {step for step, _, _ in logged} == {20, 40}  # not once per step
    loss_at = {step: value for step, name, value in logged if name == "train/loss"}
    assert loss_at[20] == pytest.approx(np.mean(losses[:20]), rel=1e-5)
    assert loss_at[40] == pytest.approx(np.mean(losses[20:40]), rel=1e-5)
    # The exploration rate at the logging step; the returns are of episodes that ended during training (an almost
    # random policy: one in every twenty-odd steps), the warm-up's left out.
    epsilon_at = {step: value for step, name, value in logged if name == "train/epsilon"}
    assert model.epsilon(100 + 20) >= epsilon_at[20] > epsilon_at[40] >= model.epsilon(100 + 50)
    returns = [value for _, name, value in logged if name == "train/episode_return_mean"]
    assert returns and len(dm.episode_returns) > len(returns)


def test_a_short_dqn_run_beats_a_random_policy():
    L.seed_everything(0, verbose=False)
    dm = datamodules.get("cartpole")(seed=0, steps_per_epoch=1000, test_episodes=5, val_episodes=1)
    model = build_model(lightning_modules.get("dqn"), dm, epsilon_decay_steps=2000)
    fit = trainer(max_epochs=4, limit_val_batches=0)
    dm.setup()
    random_returns = []
    for seed in range(5):
        env = dm.make_env()
        env.reset(seed=20_000 + seed)
        env.action_space.seed(seed)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total, done = total + reward, terminated or truncated
        random_returns.append(total)
    fit.fit(model, dm)
    learned = fit.test(model, dm, verbose=False)[0]["test/return"]
    assert learned > 2 * np.mean(random_returns), (learned, random_returns)


def test_gan_quality_metrics_separate_real_digits_from_noise():
    torch.manual_seed(0)
    dm = datamodules.get("mnist5k")(normalize=False)
    dm.setup()
    model = lightning_modules.get("gan")(classifier_epochs=1)
    model.train_feature_classifier(*dm.train_set.tensors)
    real_a, real_b = dm.test_set.tensors[0][:250], dm.test_set.tensors[0][250:]
    noise = torch.rand(250, 1, 28, 28)
    model.test_is.update(real_a)
    is_real = model.test_is.compute()[0].item()
    model.test_is.reset()
    model.test_is.update(noise)
    is_noise = model.test_is.compute()[0].item()
    assert is_real > 5 and is_noise < 3, (is_real, is_noise)
    fid = model.test_fid
    fid.update(real_a, real=True)
    fid.update(real_b, real=False)
    fid_real = fid.compute().item()
    fid.reset()
    fid.update(real_a, real=True)
    fid.update(noise, real=False)
    assert fid_real < 0.1 * fid.compute().item()


def test_gan_feature_classifier_is_trained_once_then_loaded_with_the_same_weights(monkeypatch):
    data = torch.rand(64, 1, 28, 28), torch.arange(64) % 10
    trained = []
    original = lightning_modules.get("gan").train_feature_classifier
    monkeypatch.setattr(lightning_modules.get("gan"), "train_feature_classifier",
                        lambda self, *a: (trained.append(1), original(self, *a)))

    def prepared(seed: int, images=data[0]):
        torch.manual_seed(seed)  # the classifier's initial weights come from the run's seed
        model = lightning_modules.get("gan")(classifier_epochs=1)
        model.prepare_feature_classifier(images, data[1])
        assert model.classifier_trained and not model.classifier.training
        return model.classifier.state_dict()

    first = prepared(0)
    again = prepared(0)
    assert len(trained) == 1  # the second run loaded it
    assert all(torch.equal(first[k], again[k]) for k in first)
    prepared(1)  # other initial weights: another instrument, trained
    prepared(0, images=data[0].flip(0))  # other images: trained
    assert len(trained) == 3
    for path in cache_dir().glob("gan-feature-classifier-*.pt"):
        path.write_bytes(b"partial")  # a damaged file: trained again, never an error
    prepared(0)
    assert len(trained) == 4


@pytest.mark.parametrize("failure", ["read-only", "a file in place of the folder"])
def test_an_unwritable_cache_costs_nothing(tmp_path, monkeypatch, failure):
    """A read-only DNNBENCH_CACHE (torch.save raises RuntimeError there) or an unusable one only means training."""
    from lightning_modules.base import load_or_train

    if failure == "read-only":
        def refuse(*args, **kwargs):
            raise RuntimeError("File /cache/x.tmp cannot be opened. [Errno 30] Read-only file system")

        monkeypatch.setattr(torch, "save", refuse)
        path = tmp_path / "x.pt"
    else:
        (tmp_path / "blocked").write_text("")
        path = tmp_path / "blocked" / "x.pt"
    module, trained = torch.nn.Linear(2, 2), []
    load_or_train(module, path, lambda: trained.append(1))
    assert trained == [1] and not list(tmp_path.glob("*.tmp"))
