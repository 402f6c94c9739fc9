"""Blocks introduced with CTSDG: PartialConv2d / PartialConvBlock, BiGFF, CFA (RAL + MSFA).

Facts checked against specs/pconv.md §1 and specs/ctsdg.md §3.1, §3.5, §3.6.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.cfa import CFA, MSFA, RegionAffinityLearning
from inpaintzoo.blocks.fusion import BiGFF
from inpaintzoo.blocks.partial_conv import PartialConv2d, PartialConvBlock

# --------------------------------------------------------------------------- partial conv


def _reference_pconv(conv: nn.Conv2d, x, valid, multi_channel=True, eps=1e-8):
    """The NVIDIA rule written out with the full all-ones kernel (specs/pconv.md §1)."""
    kh, kw = conv.kernel_size
    if multi_channel:
        ones = torch.ones(conv.out_channels, conv.in_channels // conv.groups, kh, kw)
        window = conv.in_channels // conv.groups * kh * kw
        groups = conv.groups
    else:
        ones = torch.ones(1, 1, kh, kw)
        window = kh * kw
        groups = 1
    kw_args = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
    count = F.conv2d(valid, ones, groups=groups, **kw_args)
    update = count.clamp(0, 1)
    ratio = window / (count + eps) * update
    raw = F.conv2d(x * valid, conv.weight, None, groups=conv.groups, **kw_args)
    if conv.bias is None:
        return raw * ratio, update
    b = conv.bias.view(1, -1, 1, 1)
    return (raw * ratio + b) * update, update


def _random_valid(shape, p=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


@pytest.mark.parametrize(
    ("multi", "groups", "bias", "stride", "dilation"),
    [
        (True, 1, False, 1, 1),
        (True, 1, True, 2, 1),
        (True, 2, True, 1, 2),
        (False, 1, True, 2, 1),
        (False, 1, False, 1, 2),
    ],
)
def test_partial_conv_matches_the_reference_rule(multi, groups, bias, stride, dilation):
    torch.manual_seed(0)
    conv = PartialConv2d(
        4, 6, 3, stride=stride, padding=dilation, dilation=dilation, groups=groups, bias=bias,
        multi_channel=multi,
    )  # fmt: skip
    x = torch.randn(2, 4, 12, 12)
    valid = _random_valid((2, 4 if multi else 1, 12, 12))
    out, new = conv(x, valid)
    ref_out, ref_new = _reference_pconv(conv, x, valid, multi)
    assert torch.allclose(out, ref_out, atol=1e-5)
    assert torch.equal(new.expand_as(ref_new), ref_new)
    assert new.shape[1] == (6 if multi else 1)


def test_partial_conv_constant_input_is_renormalised_to_the_full_window():
    """x = 1, weights 1, no bias: conv(x*M) = count, so out = window size wherever count > 0."""
    conv = PartialConv2d(2, 1, 3, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    valid = torch.zeros(1, 2, 8, 8)
    valid[..., :4, :] = 1.0  # top half known
    valid[:, 1, 0, 0] = 0.0
    out, new = conv(torch.ones(1, 2, 8, 8), valid)
    seen = new[0, 0] > 0
    assert torch.allclose(out[0, 0][seen], torch.full_like(out[0, 0][seen], 18.0))
    assert torch.all(out[0, 0][~seen] == 0)
    assert seen[:5].all() and not seen[5:].any()  # rows 0..4 touch a known row, 5..7 do not


def test_partial_conv_ignores_hole_content():
    torch.manual_seed(0)
    conv = PartialConv2d(3, 5, 5, stride=2, padding=2, bias=True)
    x = torch.randn(2, 3, 16, 16)
    valid = _random_valid((2, 1, 16, 16), p=0.5).expand(-1, 3, -1, -1)
    other = torch.where(valid > 0, x, torch.randn_like(x) * 100)
    a, ma = conv(x, valid)
    b, mb = conv(other, valid)
    assert torch.allclose(a, b, atol=1e-5) and torch.equal(ma, mb)


@pytest.mark.parametrize(("kernel", "stride", "dilation"), [(3, 1, 1), (7, 2, 1), (3, 1, 3)])
def test_mask_update_is_a_max_pool_dilation_of_the_valid_region(kernel, stride, dilation):
    pad = dilation * (kernel // 2)
    valid = _random_valid((2, 1, 20, 20), p=0.05, seed=1)
    single = PartialConv2d(1, 4, kernel, stride, pad, dilation, multi_channel=False)
    _, new = single(torch.randn(2, 1, 20, 20), valid)

    def pool(v):  # zero padding is "not valid"; max_pool2d limits its own padding
        return F.max_pool2d(F.pad(v, (pad,) * 4), kernel, stride, 0, dilation)

    pooled = pool(valid)
    assert torch.equal(new, pooled)
    # multi-channel: a location becomes valid when any channel of its window is valid
    valid3 = torch.cat([valid, _random_valid((2, 2, 20, 20), p=0.02, seed=2)], dim=1)
    multi = PartialConv2d(3, 4, kernel, stride, pad, dilation, multi_channel=True)
    _, new3 = multi(torch.randn(2, 3, 20, 20), valid3)
    pooled3 = pool(valid3.amax(dim=1, keepdim=True))
    assert torch.equal(new3, pooled3.expand_as(new3))


def test_all_hole_window_gives_zero_even_with_bias():
    conv = PartialConv2d(2, 3, 3, padding=1, bias=True)
    nn.init.constant_(conv.bias, 5.0)
    valid = torch.zeros(1, 2, 9, 9)
    valid[..., 0, 0] = 1.0
    out, new = conv(torch.randn(1, 2, 9, 9), valid)
    far = new[0, 0] == 0
    assert far.sum() == 81 - 4  # only the 2x2 corner sees the valid pixel
    assert torch.all(out[:, :, far] == 0)
    assert torch.all(out[:, :, ~far] != 0)  # bias (5) is added where the window saw a pixel


def test_all_valid_interior_equals_plain_conv_and_border_is_renormalised():
    torch.manual_seed(0)
    conv = PartialConv2d(3, 4, 3, padding=1, bias=True)
    x = torch.randn(1, 3, 10, 10)
    out, new = conv(x)  # mask None = all valid
    plain = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert torch.allclose(out[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1], atol=1e-5)
    assert torch.all(new == 1)
    corner = (plain[..., 0, 0] - conv.bias) * 9 / 4 + conv.bias  # 4 of 9 window pixels inside
    assert torch.allclose(out[..., 0, 0], corner, atol=1e-5)


def test_single_and_multi_channel_agree_when_mask_channels_agree():
    torch.manual_seed(0)
    multi = PartialConv2d(3, 4, 3, padding=1)
    single = PartialConv2d(3, 4, 3, padding=1, multi_channel=False)
    single.load_state_dict(multi.state_dict())
    x, valid = torch.randn(2, 3, 8, 8), _random_valid((2, 1, 8, 8))
    a, _ = multi(x, valid.expand(-1, 3, -1, -1))
    b, _ = single(x, valid)
    assert torch.allclose(a, b, atol=1e-5)


def test_partial_conv_gradients_and_state_dict():
    conv = PartialConv2d(3, 4, 3, padding=1)
    assert set(conv.state_dict()) == {"weight", "bias"}  # the ones kernel is not saved
    assert sum(p.numel() for p in conv.parameters()) == 3 * 4 * 9 + 4
    x = torch.randn(1, 3, 8, 8, requires_grad=True)
    valid = _random_valid((1, 3, 8, 8))
    out, new = conv(x, valid)
    out.sum().backward()
    assert not new.requires_grad
    assert torch.all(x.grad[valid == 0] == 0) and x.grad[valid == 1].abs().sum() > 0


def test_partial_conv_rejects_bad_masks():
    conv = PartialConv2d(3, 4, 3, padding=1)
    with pytest.raises(ValueError, match=r"valid mask of shape \(1, 3, 8, 8\)"):
        conv(torch.randn(1, 3, 8, 8), torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"expects x of shape \(B, 3, H, W\)"):
        conv(torch.randn(1, 2, 8, 8))
    with pytest.raises(ValueError, match="eps"):
        PartialConv2d(3, 4, 3, eps=0)


def test_partial_conv_block_norm_and_activation():
    block = PartialConvBlock(3, 8, 7, stride=2, bn=True, activation="relu")
    assert block.conv.padding == (3, 3) and block.conv.bias is None
    out, new = block(torch.randn(2, 3, 16, 16), torch.ones(2, 3, 16, 16))
    assert out.shape == (2, 8, 8, 8) and new.shape == (2, 8, 8, 8) and out.min() >= 0
    leaky = PartialConvBlock(3, 8, bn=False, activation="leaky_relu")
    assert leaky.bn is None and isinstance(leaky.activation, nn.LeakyReLU)
    assert leaky.activation.negative_slope == 0.2
    with pytest.raises(ValueError, match="unknown activation"):
        PartialConvBlock(3, 8, activation="gelu")


# --------------------------------------------------------------------------- Bi-GFF


def test_bigff_starts_as_identity_and_counts_official_parameters():
    fuse = BiGFF(8)
    t, s = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    assert torch.equal(fuse(t, s), torch.cat([t, s], dim=1))
    with torch.device("meta"):
        assert sum(p.numel() for p in BiGFF(64).parameters()) == 147_586


def test_bigff_update_order_uses_the_updated_texture():
    """Gates 0.5 (zero convs), gamma_t 1, gamma_s 2: F_t' = t + s/2, F_s' = s + F_t'."""
    fuse = BiGFF(4)
    for conv in (fuse.structure_gate, fuse.texture_gate):
        nn.init.zeros_(conv.weight)
        nn.init.zeros_(conv.bias)
    with torch.no_grad():
        fuse.texture_gamma.fill_(1.0)
        fuse.structure_gamma.fill_(2.0)
    t, s = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)
    out = fuse(t, s)
    t_new = t + 0.5 * s
    assert torch.allclose(out[:, :4], t_new, atol=1e-6)
    assert torch.allclose(out[:, 4:], s + t_new, atol=1e-6)


def test_bigff_rejects_mismatched_streams():
    with pytest.raises(ValueError, match="same shape"):
        BiGFF(4)(torch.randn(1, 4, 5, 5), torch.randn(1, 4, 6, 6))


# --------------------------------------------------------------------------- CFA


def _reference_ral(background, foreground, rate=2, scale=10.0):
    """The spec's per-sample formulation (specs/ctsdg.md §3.6): conv2d with normalised 3x3 patches,
    softmax over patches, conv_transpose2d with raw 4x4 patches, / 4."""
    outs = []
    small = F.interpolate(foreground, scale_factor=0.5, mode="bilinear", align_corners=True)
    for b in range(background.shape[0]):
        fg = small[b : b + 1]
        c, h, w = fg.shape[1:]
        patches = F.unfold(fg, 3, padding=1).transpose(1, 2).reshape(-1, c, 3, 3)
        norms = patches.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-4)
        scores = F.conv2d(fg, patches / norms, padding=1)  # (1, L, h, w)
        attn = F.softmax(scores * scale, dim=1).clamp_min(1e-8)
        padded = F.pad(background[b : b + 1], (1, 1, 1, 1))
        raw = F.unfold(padded, 2 * rate, stride=rate).transpose(1, 2).reshape(-1, c, 4, 4)
        outs.append(F.conv_transpose2d(attn, raw, stride=rate, padding=1) / 4.0)
    return torch.cat(outs)


def test_ral_matches_the_per_sample_formulation():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 16, 12)
    y = torch.randn(2, 4, 16, 12)
    ral = RegionAffinityLearning()
    assert torch.allclose(ral(x, x), _reference_ral(x, x), atol=1e-5)
    assert torch.allclose(ral(x, y), _reference_ral(x, y), atol=1e-5)
    assert sum(p.numel() for p in ral.parameters()) == 0


def test_ral_attention_is_a_distribution_over_patches():
    torch.manual_seed(0)
    attn = RegionAffinityLearning().attention(torch.randn(2, 4, 16, 16))
    assert attn.shape == (2, 64, 64)
    assert torch.allclose(attn.sum(dim=1), torch.ones(2, 64), atol=1e-5)
    # a position's own patch (cosine 1 with itself, scaled by the window norm) wins the softmax
    assert (attn.argmax(dim=1) == torch.arange(64)).float().mean() > 0.9


def test_ral_rejects_bad_sizes_and_settings():
    with pytest.raises(ValueError, match="divisible by 2"):
        RegionAffinityLearning()(torch.randn(1, 2, 9, 8))
    with pytest.raises(ValueError, match="rate must be even"):
        RegionAffinityLearning(rate=3)


def test_msfa_weights_sum_to_one_and_counts():
    torch.manual_seed(0)
    msfa = MSFA(8, 8)
    x = torch.randn(2, 8, 16, 16)
    w = msfa.branch_weights(x)
    assert w.shape == (2, 4, 16, 16) and torch.allclose(w.sum(1), torch.ones(2, 16, 16))
    expected = sum(w[:, k : k + 1] * msfa.branches[k](x) for k in range(4))
    assert torch.allclose(msfa(x), expected, atol=1e-6)
    dilations = [b[0].dilation[0] for b in msfa.branches]
    assert dilations == [1, 2, 4, 8] and [b[0].padding[0] for b in msfa.branches] == dilations
    with torch.device("meta"):
        assert sum(p.numel() for p in CFA(64, 64).parameters()) == 184_900


def test_cfa_shape_and_gradient():
    cfa = CFA(8, 8)
    x = torch.randn(1, 8, 16, 16, requires_grad=True)
    out = cfa(x)
    assert out.shape == (1, 8, 16, 16)
    out.mean().backward()
    assert x.grad is not None and math.isfinite(float(x.grad.abs().sum()))
