"""Tests for inpaintzoo.blocks: spectral norm, conv helpers, DilatedResBlock, PatchDiscriminator,
init_weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from inpaintzoo.blocks import (
    DilatedResBlock,
    PatchDiscriminator,
    conv2d,
    conv_transpose2d,
    has_spectral_norm,
    init_weights,
    legacy_spectral_norm_keys_to_parametrization,
    norm2d,
    spectral_norm,
)


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _sigma_max(weight: torch.Tensor, dim: int = 0) -> float:
    """Largest singular value of a conv weight reshaped to (out, -1) along ``dim``."""
    mat = weight.detach().transpose(0, dim).flatten(1)
    return float(torch.linalg.matrix_norm(mat, ord=2))


# --------------------------------------------------------------------------- spectral norm


def test_blocks_import_alone():
    from inpaintzoo.blocks import DilatedResBlock as A  # noqa: F401
    from inpaintzoo.blocks import PatchDiscriminator as B  # noqa: F401
    from inpaintzoo.blocks import spectral_norm as C  # noqa: F401


def test_spectral_norm_uses_parametrizations():
    conv = spectral_norm(nn.Conv2d(4, 8, 3))
    assert parametrize.is_parametrized(conv, "weight")
    assert hasattr(conv, "parametrizations")
    assert has_spectral_norm(conv)
    # Not the legacy hook: no weight_orig / weight_u attributes.
    assert not hasattr(conv, "weight_orig") and not hasattr(conv, "weight_u")
    names = dict(conv.named_parameters())
    assert set(names) == {"bias", "parametrizations.weight.original"}
    assert names["parametrizations.weight.original"].numel() == 8 * 4 * 9
    # u and v are buffers, not parameters: the count equals the plain conv's.
    buffers = dict(conv.named_buffers())
    assert set(buffers) == {"parametrizations.weight.0._u", "parametrizations.weight.0._v"}
    assert _n_params(conv) == _n_params(nn.Conv2d(4, 8, 3))


def test_spectral_norm_disabled_returns_module_untouched():
    conv = nn.Conv2d(4, 8, 3)
    assert spectral_norm(conv, enabled=False) is conv
    assert not parametrize.is_parametrized(conv)
    assert not has_spectral_norm(conv)


@pytest.mark.parametrize("transposed", [False, True])
def test_spectral_norm_sigma_is_one_after_training_forwards(transposed):
    torch.manual_seed(0)
    if transposed:
        conv = conv_transpose2d(16, 8, 4, stride=2, padding=1, use_spectral_norm=True)
    else:
        conv = conv2d(8, 16, 3, padding=1, use_spectral_norm=True)
    init_weights(conv, "normal", 0.02)
    raw = conv.parametrizations.weight.original
    # Raw weight is N(0, 0.02): its spectral norm is far from 1.
    assert _sigma_max(raw, dim=1 if transposed else 0) < 0.5
    conv.train()
    x = torch.randn(2, conv.in_channels, 8, 8)
    for _ in range(5):
        conv(x)
    # ConvTranspose weights are (in, out, k, k): SN normalises over dim 1.
    sigma = _sigma_max(conv.weight, dim=1 if transposed else 0)
    assert sigma == pytest.approx(1.0, abs=2e-2)


def test_spectral_norm_eval_mode_freezes_u():
    conv = conv2d(4, 4, 3, use_spectral_norm=True)
    u0 = conv.parametrizations.weight[0]._u.clone()
    conv.eval()
    conv(torch.randn(1, 4, 5, 5))
    assert torch.equal(conv.parametrizations.weight[0]._u, u0)
    conv.train()
    conv(torch.randn(1, 4, 5, 5))
    # One power iteration per training forward updates u in place.
    assert not torch.equal(conv.parametrizations.weight[0]._u, u0)


def test_conv_helpers_shapes_and_flags():
    c = conv2d(3, 5, 4, stride=2, padding=1, bias=False)
    assert isinstance(c, nn.Conv2d) and c.bias is None and not has_spectral_norm(c)
    assert c(torch.rand(1, 3, 16, 16)).shape == (1, 5, 8, 8)
    d = conv2d(3, 5, 3, dilation=2, padding=2, use_spectral_norm=True)
    assert d.dilation == (2, 2) and has_spectral_norm(d)
    assert d(torch.rand(1, 3, 9, 9)).shape == (1, 5, 9, 9)
    t = conv_transpose2d(5, 3, 4, stride=2, padding=1, use_spectral_norm=True)
    assert isinstance(t, nn.ConvTranspose2d) and has_spectral_norm(t)
    assert t(torch.rand(1, 5, 8, 8)).shape == (1, 3, 16, 16)


def test_legacy_spectral_norm_state_dict_converts():
    torch.manual_seed(0)
    legacy = torch.nn.utils.spectral_norm(nn.Conv2d(3, 6, 3))
    legacy.train()
    for _ in range(3):
        legacy(torch.randn(1, 3, 8, 8))
    legacy.eval()
    sd = {f"block.0.{k}": v for k, v in legacy.state_dict().items()}
    assert "block.0.weight_orig" in sd
    converted = legacy_spectral_norm_keys_to_parametrization(sd)
    assert set(converted) == {
        "block.0.bias",
        "block.0.parametrizations.weight.original",
        "block.0.parametrizations.weight.0._u",
        "block.0.parametrizations.weight.0._v",
    }
    ours = nn.Sequential(nn.Sequential(conv2d(3, 6, 3, use_spectral_norm=True)))
    ours.eval()
    ours.load_state_dict({k.replace("block.", "0."): v for k, v in converted.items()})
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), legacy(x))


# --------------------------------------------------------------------------- DilatedResBlock


def test_dilated_res_block_preserves_shape():
    block = DilatedResBlock(8, dilation=2)
    x = torch.randn(2, 8, 10, 12)
    assert block(x).shape == x.shape


def test_dilated_res_block_is_residual_without_final_activation():
    torch.manual_seed(0)
    block = DilatedResBlock(6, dilation=2)
    x = torch.randn(2, 6, 9, 9)
    out = block(x)
    torch.testing.assert_close(out - x, block.conv_block(x))
    # Zero the last conv: the branch contributes 0 (IN of a constant map is 0), so the block
    # is the identity -- including negative inputs, i.e. no ReLU after the add.
    with torch.no_grad():
        block.conv_block[5].weight.zero_()
        block.conv_block[5].bias.zero_()
    torch.testing.assert_close(block(x), x)
    assert (block(x) < 0).any()


def test_dilated_res_block_layer_order():
    block = DilatedResBlock(4, dilation=3, use_spectral_norm=True)
    layers = list(block.conv_block)
    assert [type(m).__name__ for m in layers] == [
        "ReflectionPad2d",
        "ParametrizedConv2d",
        "InstanceNorm2d",
        "ReLU",
        "ReflectionPad2d",
        "ParametrizedConv2d",
        "InstanceNorm2d",
    ]
    assert layers[0].padding == (3, 3, 3, 3) and layers[4].padding == (1, 1, 1, 1)
    c1, c2 = layers[1], layers[5]
    assert (c1.kernel_size, c1.dilation, c1.padding) == ((3, 3), (3, 3), (0, 0))
    assert (c2.kernel_size, c2.dilation, c2.padding) == ((3, 3), (1, 1), (0, 0))
    for norm in (layers[2], layers[6]):
        assert not norm.affine and not norm.track_running_stats
        assert _n_params(norm) == 0


@pytest.mark.parametrize(
    ("use_sn", "bias", "expect_bias"),
    [(True, None, False), (False, None, True), (True, True, True), (False, False, False)],
)
def test_dilated_res_block_bias_rule(use_sn, bias, expect_bias):
    block = DilatedResBlock(4, use_spectral_norm=use_sn, bias=bias)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2
    for conv in convs:
        assert (conv.bias is not None) == expect_bias
        assert has_spectral_norm(conv) == use_sn
    c = 4
    assert _n_params(block) == 2 * (9 * c * c + (c if expect_bias else 0))


def test_dilated_res_block_norm_options():
    none = DilatedResBlock(4, norm="none")
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in none.modules())
    affine = DilatedResBlock(4, affine=True)
    assert _n_params(affine) == 2 * (9 * 16 + 4) + 2 * (2 * 4)
    with pytest.raises(ValueError, match="unknown norm"):
        norm2d("group", 4)


def test_dilated_res_block_gradcheck():
    torch.manual_seed(0)
    block = DilatedResBlock(2, dilation=2).double()
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,), eps=1e-6, atol=1e-4, fast_mode=True)


# --------------------------------------------------------------------------- PatchDiscriminator


@pytest.mark.parametrize("in_channels", [1, 2, 3, 4, 6])
def test_patch_discriminator_shapes(in_channels):
    d = PatchDiscriminator(in_channels, base_channels=8)
    logits, feats = d(torch.rand(2, in_channels, 64, 64))
    assert logits.shape == (2, 1, 6, 6)
    assert len(feats) == 5
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64, 1]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 7, 6]
    assert feats[-1] is logits


def test_patch_discriminator_256_gives_30x30():
    d = PatchDiscriminator(3, base_channels=4)
    with torch.no_grad():
        logits, _ = d(torch.rand(1, 3, 256, 256))
    assert logits.shape == (1, 1, 30, 30)


def test_patch_discriminator_returns_logits_not_probabilities():
    d = PatchDiscriminator(3, base_channels=8, bias=True)
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())
    # The last stage ends in the conv itself (no activation).
    assert isinstance(d.conv5[-1], nn.Conv2d) and len(d.conv5) == 1
    for stage in (d.conv1, d.conv2, d.conv3, d.conv4):
        assert isinstance(stage[-1], nn.LeakyReLU) and stage[-1].negative_slope == 0.2
    with torch.no_grad():
        d.conv5[0].bias.fill_(-5.0)
        logits, _ = d(torch.rand(1, 3, 64, 64))
    assert logits.max() < -4.0  # a probability could not be negative


@pytest.mark.parametrize(
    ("use_sn", "bias", "expect_bias"),
    [(True, None, False), (False, None, True), (True, True, True)],
)
def test_patch_discriminator_bias_and_sn_flags(use_sn, bias, expect_bias):
    d = PatchDiscriminator(3, base_channels=8, use_spectral_norm=use_sn, bias=bias)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    for conv in convs:
        assert (conv.bias is not None) == expect_bias
        assert has_spectral_norm(conv) == use_sn
        assert conv.kernel_size == (4, 4) and conv.padding == (1, 1)
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]


def test_patch_discriminator_num_layers():
    d = PatchDiscriminator(3, base_channels=8, num_layers=2)
    logits, feats = d(torch.rand(1, 3, 32, 32))
    assert len(feats) == 4
    assert [f.shape[1] for f in feats] == [8, 16, 32, 1]
    assert logits.shape == (1, 1, 6, 6)  # 32 -> 16 -> 8 -> 7 -> 6
    # Widths are capped at 8x base, as in pix2pix.
    d5 = PatchDiscriminator(3, base_channels=2, num_layers=5)
    widths = [m.out_channels for m in d5.modules() if isinstance(m, nn.Conv2d)]
    assert widths == [2, 4, 8, 16, 16, 16, 1]
    with pytest.raises(ValueError, match="num_layers"):
        PatchDiscriminator(3, num_layers=0)


# --------------------------------------------------------------------------- init_weights


def test_init_weights_normal_std_and_zero_bias():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(64, 64, 3),
        conv2d(64, 64, 3, use_spectral_norm=True),
        nn.ConvTranspose2d(64, 32, 4),
        nn.Linear(128, 256),
        nn.BatchNorm2d(16),
        nn.InstanceNorm2d(16),
    )
    init_weights(net, "normal", 0.02)
    weights = [
        net[0].weight,
        net[1].parametrizations.weight.original,
        net[2].weight,
        net[3].weight,
    ]
    for w in weights:
        assert float(w.detach().std()) == pytest.approx(0.02, rel=0.05)
        assert abs(float(w.detach().mean())) < 2e-3
    for m in (net[0], net[1], net[2], net[3]):
        assert torch.count_nonzero(m.bias) == 0
    assert float(net[4].weight.detach().mean()) == pytest.approx(1.0, abs=0.02)
    assert torch.count_nonzero(net[4].bias) == 0
    # The SN power-iteration vectors were re-estimated for the new weight: sigma is right
    # already before any training forward.
    net[1].eval()
    assert _sigma_max(net[1].weight) == pytest.approx(1.0, abs=2e-2)


def test_init_weights_other_kinds():
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3)
    init_weights(conv, "orthogonal", 1.0)
    w = conv.weight.flatten(1)
    torch.testing.assert_close(w @ w.T, torch.eye(32), atol=1e-4, rtol=0)
    init_weights(conv, "xavier", 1.0)
    fan_in, fan_out = 16 * 9, 32 * 9
    assert float(conv.weight.detach().std()) == pytest.approx(
        (2 / (fan_in + fan_out)) ** 0.5, rel=0.1
    )
    init_weights(conv, "kaiming")
    assert float(conv.weight.detach().std()) == pytest.approx((2 / fan_in) ** 0.5, rel=0.1)
    with pytest.raises(ValueError, match="unknown init kind"):
        init_weights(conv, "uniform")  # type: ignore[arg-type]


def test_init_weights_on_meta_device():
    with torch.device("meta"):
        net = init_weights(nn.Sequential(conv2d(3, 8, 3, use_spectral_norm=True)))
    assert net[0].parametrizations.weight.original.is_meta


@pytest.mark.slow
def test_patch_discriminator_compiles():
    torch.manual_seed(0)
    d = PatchDiscriminator(3, base_channels=4).eval()
    x = torch.rand(1, 3, 32, 32)
    compiled = torch.compile(d)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x)[0], d(x)[0])


# ----------------------------------------------------------------------------- the factory
def test_gated_conv_gate_range_and_closed_gate():
    from inpaintzoo.blocks import GatedConv2d

    torch.manual_seed(0)
    conv = GatedConv2d(4, 6, 3, padding=1)
    x = torch.randn(2, 4, 8, 8) * 5
    gate = conv.gate(x)
    assert gate.shape == (2, 6, 8, 8) and gate.min() > 0 and gate.max() < 1
    # one conv with doubled outputs: the parameters of Conv2d(4, 12, 3)
    assert sum(p.numel() for p in conv.parameters()) == 12 * 4 * 9 + 12
    with torch.no_grad():
        conv.conv.bias[6:] = -1e4  # close every gate
    assert conv(x).abs().max() < 1e-6
    with torch.no_grad():
        conv.conv.bias[6:] = 1e4  # open: act(features) alone
    features = torch.nn.functional.conv2d(x, conv.conv.weight[:6], conv.conv.bias[:6], padding=1)
    torch.testing.assert_close(conv(x), torch.nn.functional.elu(features))


@pytest.mark.parametrize("kind", ["plain", "spectral", "gated", "partial"])
def test_conv_norm_act_kinds(kind):
    from inpaintzoo.blocks import ConvNormAct

    block = ConvNormAct(3, 8, 4, stride=2, padding=1, conv=kind, norm="batch", activation="relu")
    x = torch.rand(2, 3, 16, 16)
    if kind == "partial":
        out, valid = block(x, torch.ones(2, 3, 16, 16))
        assert valid.shape[-2:] == (8, 8)
    else:
        out = block(x)
    assert out.shape == (2, 8, 8, 8)
    assert has_spectral_norm(block.conv) == (kind == "spectral")
    with pytest.raises(ValueError, match="unknown conv kind"):
        ConvNormAct(3, 8, 3, conv="deformable")
    with pytest.raises(ValueError, match="unknown activation"):
        ConvNormAct(3, 8, 3, activation="gelu")
    reflect = ConvNormAct(3, 8, 3, pad_mode="reflect", norm="instance", activation="none")
    assert isinstance(reflect.pad, nn.ReflectionPad2d) and reflect.conv.padding == (0, 0)
