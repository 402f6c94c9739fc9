"""Shift-Net's own facts: the networks against specs/shiftnet.md and the official classes (layer
fingerprints, the parameter counts of both official configurations and how they relate to the
spec's pix2pix-style rebuild, shapes), the shift-connection layer against a written-out
reference, the guidance loss, the D-then-G order, and the official-weights importer against
outputs recorded from the official code (tests/fixtures/official/shiftnet,
scripts/official_parity/shiftnet.py). The registry-wide contract tests cover the rest."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import embedded_batch
from inpaintzoo import zoo
from inpaintzoo.blocks import NLayerDiscriminator, Pix2PixUNet, ShiftConnection, has_spectral_norm
from inpaintzoo.blocks.shift import shift_connection, shift_latent_mask
from inpaintzoo.methods.shiftnet import guidance_loss, read_official_shiftnet
from inpaintzoo.nets.shiftnet import (
    GENERATOR_PARAM_COUNTS,
    OFFICIAL_PARAM_COUNTS,
    build_shiftnet_nets,
)
from inpaintzoo.official import OfficialWeightsError
from inpaintzoo.official.api import model_from_weights
from inpaintzoo.official.synthetic import fixture_state_dicts, write_official_files

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "shiftnet"

# ----------------------------------------------------------------------------- spec tables
# (type, in, out, kernel, stride, padding, bias), from specs/shiftnet.md §1 and the official
# unet_shift_triple (every conv has a bias): encoder, then decoder from the outermost level
Row = tuple[str, int, int, int, int, int, bool]
W = [64, 128, 256, 512, 512, 512, 512, 512]
SPEC_GENERATOR: list[Row] = (
    [("Conv2d", 4, 64, 4, 2, 1, True)]
    + [("Conv2d", W[i - 1], W[i], 4, 2, 1, True) for i in range(1, 8)]
    + [
        ("ConvTranspose2d", 128, 3, 4, 2, 1, True),
        ("ConvTranspose2d", 256, 64, 4, 2, 1, True),
        ("ConvTranspose2d", 768, 128, 4, 2, 1, True),  # the shift level: 3 x 256 in
        ("ConvTranspose2d", 1024, 256, 4, 2, 1, True),
        ("ConvTranspose2d", 1024, 512, 4, 2, 1, True),
        ("ConvTranspose2d", 1024, 512, 4, 2, 1, True),
        ("ConvTranspose2d", 1024, 512, 4, 2, 1, True),
        ("ConvTranspose2d", 512, 512, 4, 2, 1, True),
    ]
)
SPEC_DISCRIMINATOR: list[Row] = [
    ("Conv2d", 3, 64, 4, 2, 1, True),
    ("Conv2d", 64, 128, 4, 2, 1, True),  # bias with instance norm (pix2pix use_bias)
    ("Conv2d", 128, 256, 4, 2, 1, True),
    ("Conv2d", 256, 512, 4, 1, 1, True),
    ("Conv2d", 512, 1, 4, 1, 1, True),
]


def _fingerprint(net: nn.Module) -> list[Row]:
    rows = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            kind = "ConvTranspose2d" if isinstance(m, nn.ConvTranspose2d) else "Conv2d"
            k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
            rows.append((kind, m.in_channels, m.out_channels, k, s, p, m.bias is not None))
    return rows


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_layer_fingerprints_follow_the_spec():
    with torch.device("meta"):
        nets = build_shiftnet_nets("full")
    assert _fingerprint(nets["generator"]) == SPEC_GENERATOR
    norms = [m for m in nets["generator"].modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 6 + 7 and all(m.affine for m in norms)  # down 1-6, up 1-7
    assert _fingerprint(nets["discriminator"]) == SPEC_DISCRIMINATOR
    convs = [m for m in nets["discriminator"].modules() if isinstance(m, nn.Conv2d)]
    assert all(has_spectral_norm(m) for m in convs)  # --use_spectral_norm_D 1


def test_counts_of_both_official_configurations_and_the_spec_rebuild():
    """The official classes give 54,944,771 (repository default) and 54,943,747 (batch norm,
    RGB). specs/shiftnet.md §3 lists 54,934,915 and 54,938,307 from a pix2pix-style rebuild:
    exactly our counts without the instance-norm affine parameters (IN) or without the biases
    of every inner conv, all but the outermost down and up convs (BN)."""
    with torch.device("meta"):
        for (norm, mask_channel), expected in GENERATOR_PARAM_COUNTS.items():
            nets = build_shiftnet_nets("full", norm=norm, mask_channel=mask_channel)
            assert count(nets["generator"]) == expected, (norm, mask_channel)
            assert count(nets["discriminator"]) == (2_766_529 if norm == "instance" else 2_765_633)
        default = build_shiftnet_nets("full")["generator"]
        batch = build_shiftnet_nets("full", norm="batch", mask_channel=False)["generator"]
    assert count(default) == OFFICIAL_PARAM_COUNTS["generator"]
    affine = sum(count(m) for m in default.modules() if isinstance(m, nn.InstanceNorm2d))
    assert count(default) - affine == 54_934_915  # spec: "instance norm without affine, 4-ch"
    levels = batch.unet
    inner = [lv.conv.bias.numel() for lv in (*levels.down[1:], *levels.up[1:])]
    assert sum(inner) == 5_440
    assert count(batch) - sum(inner) == 54_938_307  # spec: "BN, 3-ch"


def test_shapes_at_the_training_size():
    with torch.device("meta"):
        nets = build_shiftnet_nets("full")
        image, mask = torch.rand(1, 3, 256, 256), torch.zeros(1, 1, 256, 256)
        feats = nets["generator"].features(image, mask)
        target = nets["generator"].guidance_target(image, mask)
        logits = nets["discriminator"](image)
    assert feats["output"].shape == (1, 3, 256, 256)
    assert feats["decoder"].shape == feats["encoder"].shape == feats["shifted"].shape
    assert feats["decoder"].shape == target.shape == (1, 256, 32, 32)
    assert feats["hole"].shape == (1, 1, 32, 32) and logits.shape == (1, 1, 30, 30)


def test_network_input_and_guidance_target():
    net = build_shiftnet_nets("tiny")["generator"]
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:40, 8:32] = 1
    x = net.network_input(image, mask)
    assert x.shape == (1, 4, 64, 64)
    assert torch.equal(x[0, :3, 20, 20], torch.zeros(3)) and x[0, 3, 20, 20] == 0  # hole
    assert torch.allclose(x[0, :3, 50, 50], image[0, :, 50, 50] * 2 - 1) and x[0, 3, 50, 50] == 1
    # the target is the ground truth's encoder feature (hole content included), after the ReLU
    target = net.guidance_target(image, mask)
    full_input = net.network_input(image, mask, keep_hole=True)
    expected = torch.relu(net.unet.encode(full_input)[2])
    torch.testing.assert_close(target, expected)
    other = image.clone()
    other[..., 16:40, 8:32] = 0.5
    assert not torch.allclose(net.guidance_target(other, mask), target)


# ----------------------------------------------------------------------------- shift layer
def reference_shift(former: torch.Tensor, latter: torch.Tensor, hole: torch.Tensor):
    """The spec's shift for ONE sample, position by position: (C, H, W) -> (C, H, W)."""
    c, h, w = former.shape
    flags = hole.reshape(-1).tolist()
    q = former.reshape(c, -1)
    k = latter.reshape(c, -1)
    shifted = torch.zeros_like(q)
    known = [j for j, flag in enumerate(flags) if not flag]
    for y, flag in enumerate(flags):
        if not flag:
            continue
        cosines = [float(q[:, y] @ k[:, x] / (q[:, y].norm() * k[:, x].norm())) for x in known]
        best = known[max(range(len(known)), key=lambda i: (cosines[i], -i))]
        shifted[:, y] = k[:, best]
    return shifted.reshape(c, h, w)


def test_shift_takes_the_nearest_known_neighbour_and_leaves_known_features():
    gen = torch.Generator().manual_seed(0)
    former = torch.randn(3, 5, 4, 6, generator=gen, dtype=torch.float64)
    latter = torch.randn(3, 5, 4, 6, generator=gen, dtype=torch.float64)
    hole = torch.rand(3, 1, 4, 6, generator=gen) < 0.4
    out = ShiftConnection()(former, latter, hole)
    assert out.shape == (3, 15, 4, 6)
    assert torch.equal(out[:, :5], former) and torch.equal(out[:, 5:10], latter)
    shifted = out[:, 10:]
    for b in range(3):
        torch.testing.assert_close(shifted[b], reference_shift(former[b], latter[b], hole[b, 0]))
        assert torch.all(shifted[b][:, ~hole[b, 0]] == 0)  # known positions get nothing
    # one planted twin: a hole's decoder feature parallel to one known encoder feature
    former[0, :, 0, 0] = 3.0 * latter[0, :, 2, 5]
    hole[0, 0, 0, 0], hole[0, 0, 2, 5] = True, False
    again, index = shift_connection(former, latter, hole, return_indices=True)
    assert int(index[0, 0]) == 2 * 6 + 5
    assert torch.equal(again[0, :, 0, 0], latter[0, :, 2, 5])


def test_shift_gradient_goes_to_the_sources_only():
    gen = torch.Generator().manual_seed(1)
    former = torch.randn(2, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    latter = torch.randn(2, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    hole = torch.zeros(2, 1, 3, 3, dtype=torch.bool)
    hole[0, 0, :2, :2] = True
    hole[1, 0, 1:, 1:] = True
    shifted, index = shift_connection(former, latter, hole, triple_weight=0.5, return_indices=True)
    grad_out = torch.randn(shifted.shape, generator=gen, dtype=torch.float64)
    g_former, g_latter = torch.autograd.grad(shifted, (former, latter), grad_out, allow_unused=True)
    assert g_former is None or torch.all(g_former == 0)  # no gradient through the argmax
    expected = torch.zeros(2, 3, 9, dtype=torch.float64)
    for b in range(2):
        for y in hole[b].reshape(-1).nonzero().flatten().tolist():
            expected[b, :, index[b, y]] += 0.5 * grad_out[b].reshape(3, -1)[:, y]
    torch.testing.assert_close(g_latter.reshape(2, 3, 9), expected)  # triple_weight * W^T grad


def test_latent_mask_is_the_top_left_pixel_of_each_block():
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 8, 8] = 1  # top-left pixel of block (1, 1) at stride 8
    mask[..., 1:8, 1:8] = 1  # block (0, 0) without its top-left pixel
    assert shift_latent_mask(mask, 3).tolist() == [[[[False, False], [False, True]]]]


def test_guidance_loss_by_hand_has_the_official_gradient():
    decoder = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=True)
    target = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    hole = torch.tensor([[[[True, False], [False, True]]]])
    loss = guidance_loss(decoder, target, hole)
    assert float(loss.detach()) == pytest.approx((1.0 + 9.0) / 4)
    (ours,) = torch.autograd.grad(loss, decoder)
    official = F.mse_loss(decoder * hole, target)  # InnerCosFunction.backward's criterion
    (theirs,) = torch.autograd.grad(official, decoder)
    torch.testing.assert_close(ours, theirs)


def test_blocks_refuse_bad_configurations():
    with pytest.raises(ValueError, match="inner levels"):
        Pix2PixUNet(3, 3, num_downs=4, extra_up_channels={3: 8})
    with pytest.raises(ValueError, match="divisible by 16"):
        Pix2PixUNet(3, 3, num_downs=4, base_channels=4)(torch.rand(1, 3, 24, 24))
    with pytest.raises(ValueError, match="unknown PatchGAN norm"):
        NLayerDiscriminator(3, norm="layer")
    with pytest.raises(ValueError, match="norm must be"):
        build_shiftnet_nets("tiny", norm="none")


# ----------------------------------------------------------------------------- training
def test_d_then_g_with_the_paper_weights():
    torch.manual_seed(0)
    model = zoo.create_model("shiftnet", variant="tiny")
    calls = []
    model.optimize = lambda losses, names, terms=None: calls.append((losses, names, terms))
    batch = embedded_batch(n=2, size=64, seed=4)
    logs = model.training_batch(batch)
    assert [c[1] for c in calls] == ["discriminator", "generator"]
    losses, _, terms = calls[1]
    assert set(terms) == {"l1", "guidance", "adversarial"}
    expected = 100 * terms["l1"] + 1.0 * terms["guidance"] + 0.2 * terms["adversarial"]
    torch.testing.assert_close(losses["g"], expected)
    # D: 0.5 (BCE(D(real), 1) + BCE(D(fake), 0)), on the output before compositing
    image = batch["image"]
    with torch.no_grad():
        fake = model.generator(image * (1 - batch["mask"]), batch["mask"])
        real_logits, fake_logits = model.discriminator(image), model.discriminator(fake)
    d_expected = 0.5 * (
        F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    )
    assert float(calls[0][0]["discriminator"].detach()) == pytest.approx(
        float(d_expected), rel=1e-4
    )
    assert float(logs["d"]) == pytest.approx(float(d_expected), rel=1e-4)
    assert terms["guidance"].requires_grad and float(terms["guidance"].detach()) > 0


def test_masks_are_per_sample():
    torch.manual_seed(0)
    net = build_shiftnet_nets("tiny")["generator"].eval()
    batch = embedded_batch(n=3, size=64, seed=5)
    image, mask = batch["image"], batch["mask"]
    together = net(image, mask)
    for b in range(3):
        alone = net(image[b : b + 1], mask[b : b + 1])
        torch.testing.assert_close(alone[0], together[b], atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- official weights
@pytest.fixture(scope="module")
def official(tmp_path_factory):
    meta = json.loads((FIXTURE / "keys.json").read_text())
    data = np.load(FIXTURE / "parity.npz")
    states = fixture_state_dicts(meta)
    root = tmp_path_factory.mktemp("shiftnet_official")
    folders = {}
    for config, layout in meta["files"].items():
        folders[config] = root / config
        write_official_files(layout, states, folders[config])
    return meta, data, folders


def _diff(ours: torch.Tensor, official: np.ndarray) -> float:
    official = torch.from_numpy(official)
    assert ours.shape == official.shape
    return float((ours.double() - official.double()).abs().max())


def test_official_weights_reproduce_the_official_outputs(official):
    """Both official configurations, eval mode: max |ours - official| <= 1e-5 (measured 6e-8)."""
    _, data, folders = official
    image = torch.from_numpy(data["input_image"]).float() / 255
    mask = torch.from_numpy(data["input_mask"]).float()
    weights = read_official_shiftnet(folders["default"])
    assert weights.options == {"norm": "instance", "mask_channel": True, "disc_spectral_norm": True}
    model = model_from_weights(weights)
    with torch.no_grad():
        feats = model.generator.features(image * (1 - mask), mask)
        assert _diff(feats["output"] * 2 - 1, data["output_output"]) <= 1e-5
        target = model.generator.guidance_target(image, mask)[:, :32]
        assert _diff(target, data["output_guidance_target"]) <= 1e-5
        assert (
            _diff(torch.sigmoid(model.discriminator(feats["output"])), data["output_d_fake"])
            <= 1e-5
        )
        assert _diff(torch.sigmoid(model.discriminator(image)), data["output_d_real"]) <= 1e-5
        # the importer's path: inpaint() composites the same output
        out = model.inpaint(image, mask)
        assert _diff(out["output"] * 2 - 1, data["output_output"]) <= 1e-5

    weights = read_official_shiftnet(folders["batchnorm"] / "20_net_G.pth")
    assert weights.options == {"norm": "batch", "mask_channel": False, "disc_spectral_norm": True}
    model = model_from_weights(weights)
    assert model.generator.norm == "batch" and not model.generator.mask_channel
    with torch.no_grad():
        output = model.generator(image * (1 - mask), mask) * 2 - 1
        assert _diff(output[..., 96:160, 96:160], data["output_batchnorm_output_crop"]) <= 1e-5
        d_real = torch.sigmoid(model.discriminator(image))
        assert _diff(d_real, data["output_batchnorm_d_real"]) <= 1e-5


def test_official_reader_refuses_bad_files(official, tmp_path):
    _, _, folders = official
    folder = folders["default"]
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    shutil.copy(folder / "latest_net_D.pth", swapped / "latest_net_G.pth")
    with pytest.raises(OfficialWeightsError, match="not a Shift-Net generator"):
        read_official_shiftnet(swapped)
    face = tmp_path / "face"
    face.mkdir()
    torch.save({"e1_c.weight": torch.zeros(64, 4, 4, 4)}, face / "30_net_G.pth")
    with pytest.raises(OfficialWeightsError, match="face_unet_shift_triple"):
        read_official_shiftnet(face)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OfficialWeightsError, match="no <epoch>_net_G.pth"):
        read_official_shiftnet(empty)
    only_g = tmp_path / "only_g"
    only_g.mkdir()
    shutil.copy(folder / "latest_net_G.pth", only_g / "7_net_G.pth")
    weights = read_official_shiftnet(only_g)
    assert list(weights.state_dicts) == ["generator"] and "discriminator" in weights.notes[0]


# ----------------------------------------------------------------------------- full size
@pytest.mark.slow
def test_full_size_forward_backward_at_256():
    torch.manual_seed(0)
    model = zoo.create_model("shiftnet", variant="full")
    calls = []
    model.optimize = lambda losses, names, terms=None: calls.append((losses, names, terms))
    image = torch.rand(2, 3, 256, 256)
    mask = torch.zeros(2, 1, 256, 256)
    mask[0, :, 68:188, 68:188] = 1  # the official centre hole
    mask[1, :, 10:90, 120:250] = 1
    model.training_batch({"image": image, "mask": mask})
    losses, _, terms = calls[-1]
    losses["g"].backward()
    assert all(p.grad is not None for p in model.generator.parameters())
    assert float(terms["guidance"]) > 0
