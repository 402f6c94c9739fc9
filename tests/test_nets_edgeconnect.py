"""Tests for inpaintzoo.nets.edgeconnect against specs/edgeconnect.md §3 (architecture) and §3.4
(parameter counts). Full-size nets are built on the meta device; full-size compute runs only in
the slow-marked test."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from inpaintzoo.blocks import has_spectral_norm
from inpaintzoo.nets.edgeconnect import (
    DISCRIMINATOR_MIN_SIZE,
    EDGECONNECT_VARIANTS,
    MIN_SIZE,
    OFFICIAL_PARAM_COUNTS,
    SIZE_MULTIPLE,
    EdgeConnectDiscriminator,
    EdgeGenerator,
    InpaintGenerator,
    build_edgeconnect_nets,
    convert_official_state_dict,
)

NET_NAMES = ["edge_generator", "inpaint_generator", "edge_discriminator", "inpaint_discriminator"]

# ----------------------------------------------------------------------------------------------
# Expected layer tables, written from the spec's layer lists (not from the modules under test).
# A row: (type, in_ch, out_ch, kernel, stride, padding, dilation, has_bias, spectral_norm).

Row = tuple[str, int, int, int, int, int, int, bool, bool]


def _spec_generator(
    in_ch: int, out_ch: int, sn: bool, base: int = 64, blocks: int = 8
) -> list[Row]:
    """Spec §3.1/§3.2: encoder k7 + two k4 s2 p1 downs (SN if G1, bias), res blocks (bias =
    not SN), two k4 s2 p1 transposed ups (SN if G1, bias), final k7 with bias and no SN."""
    b = base
    rows: list[Row] = [
        ("Conv2d", in_ch, b, 7, 1, 0, 1, True, sn),
        ("Conv2d", b, 2 * b, 4, 2, 1, 1, True, sn),
        ("Conv2d", 2 * b, 4 * b, 4, 2, 1, 1, True, sn),
    ]
    for _ in range(blocks):
        rows.append(("Conv2d", 4 * b, 4 * b, 3, 1, 0, 2, not sn, sn))
        rows.append(("Conv2d", 4 * b, 4 * b, 3, 1, 0, 1, not sn, sn))
    rows += [
        ("ConvTranspose2d", 4 * b, 2 * b, 4, 2, 1, 1, True, sn),
        ("ConvTranspose2d", 2 * b, b, 4, 2, 1, 1, True, sn),
        ("Conv2d", b, out_ch, 7, 1, 0, 1, True, False),
    ]
    return rows


def _spec_discriminator(in_ch: int, base: int = 64) -> list[Row]:
    """Spec §3.3: 5 convs k4 p1, SN, bias-free: 64 s2, 128 s2, 256 s2, 512 s1, 1 s1."""
    widths = [in_ch, base, 2 * base, 4 * base, 8 * base, 1]
    strides = [2, 2, 2, 1, 1]
    return [
        ("Conv2d", widths[i], widths[i + 1], 4, strides[i], 1, 1, False, True) for i in range(5)
    ]


EXPECTED_LAYERS: dict[str, list[Row]] = {
    "edge_generator": _spec_generator(3, 1, sn=True),
    "inpaint_generator": _spec_generator(4, 3, sn=False),
    "edge_discriminator": _spec_discriminator(2),
    "inpaint_discriminator": _spec_discriminator(3),
}


def _fingerprint(net: nn.Module) -> list[Row]:
    rows: list[Row] = []
    for name, m in net.named_modules():
        if "parametrizations" in name or not isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            continue
        kind = "ConvTranspose2d" if isinstance(m, nn.ConvTranspose2d) else "Conv2d"
        (k, _), (s, _), (p, _), (d, _) = m.kernel_size, m.stride, m.padding, m.dilation
        rows.append(
            (
                kind,
                m.in_channels,
                m.out_channels,
                k,
                s,
                p,
                d,
                m.bias is not None,
                has_spectral_norm(m),
            )
        )
    return rows


def _leaf_sequence(net: nn.Module) -> list[str]:
    """Ordered leaf layers as short tokens: conv, tconv, in, relu, pad<k>."""
    tokens = []
    for name, m in net.named_modules():
        if "parametrizations" in name:
            continue
        if isinstance(m, nn.ConvTranspose2d):
            tokens.append("tconv")
        elif isinstance(m, nn.Conv2d):
            tokens.append("conv")
        elif isinstance(m, nn.InstanceNorm2d):
            tokens.append("in")
        elif isinstance(m, nn.ReLU):
            tokens.append("relu")
        elif isinstance(m, nn.ReflectionPad2d):
            tokens.append(f"pad{m.padding[0]}")
        elif not list(m.children()):
            tokens.append(type(m).__name__)
    return tokens


def _spec_generator_sequence(blocks: int = 8) -> list[str]:
    seq = ["pad3", "conv", "in", "relu", "conv", "in", "relu", "conv", "in", "relu"]
    seq += ["pad2", "conv", "in", "relu", "pad1", "conv", "in"] * blocks
    seq += ["tconv", "in", "relu", "tconv", "in", "relu", "pad3", "conv"]
    return seq


@pytest.fixture(scope="module")
def full_nets() -> dict[str, nn.Module]:
    with torch.device("meta"):
        return build_edgeconnect_nets("full")


@pytest.fixture
def tiny_nets() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return build_edgeconnect_nets("tiny")


# ----------------------------------------------------------------------------- full size, meta


@pytest.mark.parametrize("name", NET_NAMES)
def test_full_param_counts_match_official(full_nets, name):
    count = sum(p.numel() for p in full_nets[name].parameters())
    assert count == OFFICIAL_PARAM_COUNTS[name]


def test_official_counts_are_the_spec_numbers():
    assert OFFICIAL_PARAM_COUNTS == {
        "edge_generator": 10_761_089,
        "inpaint_generator": 10_774_595,
        "edge_discriminator": 2_762_752,
        "inpaint_discriminator": 2_763_776,
    }
    assert (
        OFFICIAL_PARAM_COUNTS["edge_generator"] + OFFICIAL_PARAM_COUNTS["inpaint_generator"]
        == 21_535_684
    )


@pytest.mark.parametrize("name", NET_NAMES)
def test_full_layer_fingerprints(full_nets, name):
    assert _fingerprint(full_nets[name]) == EXPECTED_LAYERS[name]


@pytest.mark.parametrize("name", ["edge_generator", "inpaint_generator"])
def test_generator_layer_order_and_norms(full_nets, name):
    net = full_nets[name]
    assert _leaf_sequence(net) == _spec_generator_sequence()
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 + 2 * 8 + 2  # encoder, res blocks, decoder
    for norm in norms:
        assert not norm.affine and not norm.track_running_stats
        assert sum(p.numel() for p in norm.parameters()) == 0
    # Nothing after the output conv (no norm, no activation module).
    assert isinstance(net.decoder[-1], nn.Conv2d) and len(list(net.decoder[-1].children())) == 0


@pytest.mark.parametrize("name", ["edge_discriminator", "inpaint_discriminator"])
def test_discriminator_layer_order(full_nets, name):
    seq = _leaf_sequence(full_nets[name])
    assert seq == ["conv", "LeakyReLU"] * 4 + ["conv"]
    assert not any(isinstance(m, nn.Sigmoid) for m in full_nets[name].modules())


def test_spectral_norm_buffers_not_counted(full_nets):
    g1 = full_nets["edge_generator"]
    n_sn = sum(has_spectral_norm(m) for m in g1.modules())
    assert n_sn == 3 + 16 + 2
    buffers = [n for n, _ in g1.named_buffers()]
    assert len(buffers) == 2 * n_sn and all(n.endswith(("._u", "._v")) for n in buffers)


# ----------------------------------------------------------------------------- discriminators


def test_full_discriminator_256_gives_30x30():
    torch.manual_seed(0)
    d2 = EdgeConnectDiscriminator(3)
    with torch.no_grad():
        logits, feats = d2(torch.rand(1, 3, 256, 256))
    assert logits.shape == (1, 1, 30, 30)
    assert len(feats) == 5
    assert [tuple(f.shape[1:]) for f in feats] == [
        (64, 128, 128),
        (128, 64, 64),
        (256, 32, 32),
        (512, 31, 31),
        (1, 30, 30),
    ]


@pytest.mark.parametrize(("in_channels", "size", "out"), [(2, 64, 6), (3, 64, 6), (3, 24, 1)])
def test_discriminator_patch_sizes(in_channels, size, out):
    d = EdgeConnectDiscriminator(in_channels, base_channels=16)
    logits, feats = d(torch.rand(2, in_channels, size, size))
    assert logits.shape == (2, 1, out, out)
    assert len(feats) == 5 and feats[-1] is logits
    assert size >= DISCRIMINATOR_MIN_SIZE


# ----------------------------------------------------------------------------- tiny variant


def test_tiny_variant_forward_backward_64(tiny_nets):
    g1, g2 = tiny_nets["edge_generator"], tiny_nets["inpaint_generator"]
    d1, d2 = tiny_nets["edge_discriminator"], tiny_nets["inpaint_discriminator"]
    image = torch.rand(2, 3, 64, 64)
    gray = image.mean(1, keepdim=True)
    edge = (torch.rand(2, 1, 64, 64) > 0.9).float()
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1.0

    edge_pred = g1(torch.cat([gray * (1 - mask) + mask, edge * (1 - mask), mask], 1))
    assert edge_pred.shape == (2, 1, 64, 64)
    assert edge_pred.min() >= 0 and edge_pred.max() <= 1
    edge_comp = edge_pred * mask + edge * (1 - mask)
    out = g2(torch.cat([image * (1 - mask) + mask, edge_comp], 1))
    assert out.shape == (2, 3, 64, 64)
    assert out.min() >= 0 and out.max() <= 1

    logits1, feats1 = d1(torch.cat([gray, edge_pred], 1))
    logits2, feats2 = d2(out)
    assert logits1.shape == logits2.shape == (2, 1, 6, 6)
    assert len(feats1) == len(feats2) == 5
    (logits1.mean() + logits2.mean() + (out - image).abs().mean()).backward()

    firsts = {
        "edge_generator": g1.encoder[1].parametrizations.weight.original,
        "inpaint_generator": g2.encoder[1].weight,
        "edge_discriminator": d1.conv1[0].parametrizations.weight.original,
        "inpaint_discriminator": d2.conv1[0].parametrizations.weight.original,
    }
    for name, weight in firsts.items():
        assert weight.grad is not None, name
        assert torch.isfinite(weight.grad).all(), name
        assert weight.grad.abs().sum() > 0, name


def test_tiny_variant_widths(tiny_nets):
    cfg = EDGECONNECT_VARIANTS["tiny"]
    b, n = cfg["base_channels"], cfg["num_residual_blocks"]
    assert _fingerprint(tiny_nets["edge_generator"]) == _spec_generator(3, 1, True, b, n)
    assert _fingerprint(tiny_nets["inpaint_generator"]) == _spec_generator(4, 3, False, b, n)
    assert _fingerprint(tiny_nets["edge_discriminator"]) == _spec_discriminator(
        2, cfg["disc_channels"]
    )


def test_output_activations_match_logits():
    torch.manual_seed(0)
    g1 = EdgeGenerator(base_channels=8, num_residual_blocks=1)
    g2 = InpaintGenerator(base_channels=8, num_residual_blocks=1)
    x1, x2 = torch.rand(1, 3, 16, 16), torch.rand(1, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(g1(x1), torch.sigmoid(g1.forward_logits(x1)))
        torch.testing.assert_close(g2(x2), (torch.tanh(g2.forward_logits(x2)) + 1) / 2)
        # Drive the pre-activations far out: outputs saturate inside [0, 1], never beyond.
        g1.decoder[-1].bias.fill_(50.0)
        g2.decoder[-1].bias.fill_(-50.0)
        assert torch.all(g1(x1) <= 1) and torch.all(g1(x1) > 0.99)
        assert torch.all(g2(x2) >= 0) and torch.all(g2(x2) < 0.01)


def test_init_is_normal_002():
    torch.manual_seed(0)
    g2 = InpaintGenerator(base_channels=16, num_residual_blocks=2)
    w = g2.middle[0].conv_block[1].weight.detach()
    assert float(w.std()) == pytest.approx(0.02, rel=0.05)
    assert torch.count_nonzero(g2.middle[0].conv_block[1].bias) == 0
    d = EdgeConnectDiscriminator(3, base_channels=16)
    w = d.conv2[0].parametrizations.weight.original.detach()
    assert float(w.std()) == pytest.approx(0.02, rel=0.05)


# ----------------------------------------------------------------------------- sizes and errors


@pytest.mark.parametrize("size", [(62, 64), (64, 66), (30, 30)])
def test_non_multiple_of_4_raises(size):
    g = EdgeGenerator(base_channels=8, num_residual_blocks=1)
    with pytest.raises(ValueError, match=rf"divisible by {SIZE_MULTIPLE}.*{size[0]}x{size[1]}"):
        g(torch.rand(1, 3, *size))


def test_too_small_and_wrong_channels_raise():
    g2 = InpaintGenerator(base_channels=8, num_residual_blocks=1)
    with pytest.raises(ValueError, match=r"min_size.*8x8"):
        g2(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 4, H, W\)"):
        g2(torch.rand(1, 3, 16, 16))
    # The smallest legal size works.
    assert g2(torch.rand(1, 4, MIN_SIZE, MIN_SIZE)).shape == (1, 3, MIN_SIZE, MIN_SIZE)


def test_non_square_sizes():
    g1 = EdgeGenerator(base_channels=8, num_residual_blocks=1)
    assert g1(torch.rand(1, 3, 32, 48)).shape == (1, 1, 32, 48)


def test_build_overrides_and_errors():
    nets = build_edgeconnect_nets("tiny", base_channels=8, num_residual_blocks=1, init=False)
    assert nets["edge_generator"].encoder[1].out_channels == 8
    assert len(nets["inpaint_generator"].middle) == 1
    assert nets["inpaint_discriminator"].conv1[0].out_channels == 16
    assert set(nets) == set(NET_NAMES)
    with pytest.raises(ValueError, match="unknown EdgeConnect variant"):
        build_edgeconnect_nets("huge")
    with pytest.raises(ValueError, match="unknown EdgeConnect override"):
        build_edgeconnect_nets("tiny", width=3)


# ----------------------------------------------------------------------------- official weights


def _to_legacy_sn(net: nn.Module) -> nn.Module:
    """Swap every SN parametrization of ``net`` for the legacy SN hook (in place): this gives
    the official module/state-dict layout (``weight_orig``, ``weight_u``, ``weight_v``)."""
    for m in list(net.modules()):
        if has_spectral_norm(m):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
            torch.nn.utils.spectral_norm(m)
    return net


def test_convert_official_state_dict_loads_strict():
    torch.manual_seed(0)
    ours = EdgeGenerator(base_channels=8, num_residual_blocks=2)
    legacy = _to_legacy_sn(EdgeGenerator(base_channels=8, num_residual_blocks=2))
    legacy.train()
    x = torch.rand(1, 3, 16, 16)
    for _ in range(2):
        legacy(x)
    legacy.eval()
    sd = legacy.state_dict()
    assert "middle.0.conv_block.1.weight_orig" in sd and "decoder.0.weight_u" in sd
    assert "middle.0.conv_block.1.bias" not in sd  # official G1 res convs are bias-free
    ours.load_state_dict(convert_official_state_dict(sd), strict=True)
    ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), legacy(x))

    d_ours = EdgeConnectDiscriminator(2, base_channels=8).eval()
    d_legacy = _to_legacy_sn(EdgeConnectDiscriminator(2, base_channels=8)).eval()
    assert "conv1.0.weight_orig" in d_legacy.state_dict()
    d_ours.load_state_dict(convert_official_state_dict(d_legacy.state_dict()), strict=True)
    y = torch.rand(1, 2, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(d_ours(y)[0], d_legacy(y)[0])


def test_no_lightning_or_hydra_import():
    import ast

    import inpaintzoo.blocks
    import inpaintzoo.nets.edgeconnect

    files = [Path(inpaintzoo.nets.edgeconnect.__file__)]
    files += sorted(Path(inpaintzoo.blocks.__file__).parent.glob("*.py"))
    banned = {"lightning", "pytorch_lightning", "hydra", "omegaconf"}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & banned, f"{path.name} imports {roots & banned}"


# ----------------------------------------------------------------------------- slow, full size


@pytest.mark.slow
def test_full_size_forward_backward_64():
    torch.manual_seed(0)
    nets = build_edgeconnect_nets("full")
    g1, g2 = nets["edge_generator"], nets["inpaint_generator"]
    d1, d2 = nets["edge_discriminator"], nets["inpaint_discriminator"]
    edge = g1(torch.rand(1, 3, 64, 64))
    out = g2(torch.cat([torch.rand(1, 3, 64, 64), edge], 1))
    assert edge.shape == (1, 1, 64, 64) and out.shape == (1, 3, 64, 64)
    assert 0 <= float(edge.detach().min()) and float(edge.detach().max()) <= 1
    assert 0 <= float(out.detach().min()) and float(out.detach().max()) <= 1
    l1, f1 = d1(torch.cat([torch.rand(1, 1, 64, 64), edge], 1))
    l2, f2 = d2(out)
    assert l1.shape == l2.shape == (1, 1, 6, 6) and len(f1) == len(f2) == 5
    (l1.mean() + l2.mean() + out.mean()).backward()
    for net in nets.values():
        grads = [p.grad for p in net.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
