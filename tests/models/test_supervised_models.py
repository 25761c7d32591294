"""Behaviour of the eight supervised families beyond the registry-wide contract tests."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F

import datamodules
import lightning_modules
from lightning_modules import build_model
from lightning_modules.base import Classifier
from lightning_modules.capsnet import squash
from lightning_modules.resnet import BasicBlock
from tests.helpers import smoke_model


def fixed_batch(model_class, size=32):
    spec = model_class.bench
    dm = datamodules.get(spec.classic.datamodule)(batch_size=size, seed=0, **spec.classic.data)
    dm.setup("fit")
    return dm, next(iter(dm.train_dataloader()))


def supervised_loss(model, batch):
    if isinstance(model, Classifier):
        x, y = batch
        return model.loss(model(x), y)
    src, tgt = batch  # transformer: teacher-forced cross-entropy
    return F.cross_entropy(model(src, model.decoder_input(tgt)).flatten(0, 1), tgt.flatten())


SUPERVISED = ["mlp", "cnn", "rnn", "lstm", "resnet", "capsnet", "attention", "transformer"]


@pytest.mark.parametrize("name", SUPERVISED)
def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(name):
    L.seed_everything(0, verbose=False)
    cls = lightning_modules.get(name)
    dm, batch = fixed_batch(cls)
    model = build_model(cls, dm, smoke=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    first = supervised_loss(model, batch).item()
    for _ in range(30):
        loss = supervised_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert supervised_loss(model, batch).item() < 0.9 * first


@pytest.mark.parametrize("name", ["mlp", "cnn", "rnn", "lstm", "resnet", "capsnet", "attention"])
def test_classifiers_output_one_score_per_class(name):
    cls = lightning_modules.get(name)
    dm, (x, _) = fixed_batch(cls, size=4)
    model = build_model(cls, dm, smoke=True).eval()
    assert model(x).shape == (4, 10)


@pytest.mark.parametrize("name", ["cnn", "resnet", "mlp", "capsnet"])
def test_image_models_take_rgb_32x32(name):
    model = smoke_model(name, input_shape=(3, 32, 32), num_classes=10).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_resnet_takes_imagenet_sized_inputs_and_presets_have_their_depth():
    model = lightning_modules.get("resnet")(input_shape=(3, 224, 224), num_classes=1000, preset="resnet18").eval()
    assert model(torch.rand(1, 3, 224, 224)).shape == (1, 1000)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8  # 4 stages x 2: 16 convs + stem + fc = 18 layers
    resnet20 = lightning_modules.get("resnet")(preset="resnet20")
    blocks = [m for m in resnet20.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 9  # 3 stages x 3: 18 convs + stem + fc = 20 layers
    projections = [b for b in blocks if not isinstance(b.shortcut, torch.nn.Identity)]
    assert len(projections) == 2  # where the stage changes width and stride


def test_sequence_models_reject_image_data_clearly():
    from datamodules import ConfigError

    with pytest.raises(ConfigError, match="takes sequence data, but datamodule 'mnist5k' provides image"):
        build_model(lightning_modules.get("lstm"), datamodules.get("mnist5k")())


def test_capsnet_routing_coefficients_sum_to_one_and_squash_stays_below_one():
    model = smoke_model("capsnet").eval()
    capsules = model.net(torch.rand(3, 1, 28, 28))
    coupling = model.net.digits.last_coupling  # (B, in_caps, out_caps)
    torch.testing.assert_close(coupling.sum(-1), torch.ones(coupling.shape[:2]))
    assert (capsules.norm(dim=-1) < 1).all()
    big = torch.randn(100, 16) * 100
    assert (squash(big).norm(dim=-1) < 1).all()
    torch.testing.assert_close(squash(torch.tensor([[3.0, 4.0]])).norm(), torch.tensor(25 / 26))


def test_capsnet_margin_loss_is_zero_for_confident_correct_lengths():
    model = smoke_model("capsnet")
    lengths = torch.full((2, 10), 0.05)
    lengths[0, 3] = lengths[1, 7] = 0.95
    assert model.loss(lengths, torch.tensor([3, 7])).item() == 0.0
    assert model.loss(lengths, torch.tensor([4, 7])).item() > 0.0


def test_attention_weights_are_a_distribution_over_time():
    model = smoke_model("attention").eval()
    weights = model.attention_weights(torch.randn(5, 28, 28))
    assert weights.shape == (5, 28) and (weights >= 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(5))


def test_transformer_causal_mask_hides_future_targets():
    torch.manual_seed(0)
    model = smoke_model("transformer").eval()
    src = torch.randint(0, 10, (2, 8))
    tgt_in = torch.randint(0, 10, (2, 8))
    changed = tgt_in.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 10  # change positions 5.. only
    before, after = model(src, tgt_in), model(src, changed)
    torch.testing.assert_close(before[:, :5], after[:, :5])  # earlier outputs cannot see the change
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_transformer_greedy_decoding_returns_the_target_length():
    model = smoke_model("transformer").eval()
    decoded = model.greedy_decode(torch.randint(0, 10, (3, 8)))
    assert decoded.shape == (3, 8) and decoded.dtype == torch.int64


def test_transformer_greedy_decoding_encodes_once_and_decodes_as_the_whole_model_does():
    """The decoder's memory is computed once per batch; each next token is the whole nn.Transformer's argmax."""
    torch.manual_seed(0)
    model = smoke_model("transformer").eval()
    src = torch.randint(0, 10, (4, 8))
    tokens = torch.full_like(src[:, :1], model.hparams.bos_token)
    with torch.no_grad():
        for _ in range(8):  # the reference: the whole model (nn.Transformer.forward) on the growing prefix
            whole = model.net.out(model.net.transformer(model.net.embed_tokens(src), model.net.embed_tokens(tokens),
                                                        tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(
                                                            tokens.shape[1]), tgt_is_causal=True))
            tokens = torch.cat([tokens, whole[:, -1].argmax(-1, keepdim=True)], dim=1)
    encoder_calls = []
    model.net.transformer.encoder.register_forward_hook(lambda *_: encoder_calls.append(1))
    assert torch.equal(model.greedy_decode(src), tokens[:, 1:])
    assert len(encoder_calls) == 1


def test_the_transformer_attends_through_scaled_dot_product_attention_with_a_causal_flag(monkeypatch):
    calls = []
    sdpa = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[5] if len(args) > 5 else kwargs.get("is_causal", False))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    model = lightning_modules.get("transformer")(d_model=16, heads=2, layers=1, ff=32, norm_first=True)
    src = torch.randint(0, 10, (4, 8))
    model.training_step((src, src.flip(-1)), 0).backward()
    # One encoder self-attention, one decoder self-attention (causal) and one cross-attention per layer pair.
    assert sorted(calls) == [False, False, True]
