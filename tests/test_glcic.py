"""GLCIC's own facts: networks against specs/glcic.md §1, §2, §6 (layer fingerprints, component
counts, shapes), the per-sample crops of the local discriminator, the three-phase schedule and
its stage logic, the loss values, ADADELTA and the Telea + Poisson post-processing. The
registry-wide contract tests (tests/test_contract.py) cover counts, CLI, learning, checkpoints,
predictor and export. Full-size nets live on the meta device; full-size compute only in the slow
test."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import embedded_batch, fit
from inpaintzoo import zoo
from inpaintzoo.blocks.context_discriminator import (
    ContextDiscriminatorBranch,
    crop_around_holes,
    hole_bounding_boxes,
    random_crops,
)
from inpaintzoo.methods.glcic import telea_poisson_blend
from inpaintzoo.nets.glcic import OFFICIAL_PARAM_COUNTS, build_glcic_nets

# ----------------------------------------------------------------------------- spec tables
# (type, in, out, kernel, stride, padding, dilation, bias, batch norm, activation), from the
# spec's tables (not from the modules under test).
Row = tuple[str, int, int, int, int, int, int, bool, bool, str]


def _c(cin, cout, k, s=1, d=1, act="ReLU", bn=True) -> Row:
    return ("Conv2d", cin, cout, k, s, d * (k - 1) // 2, d, True, bn, act)


SPEC_COMPLETION: list[Row] = [
    _c(4, 64, 5),
    _c(64, 128, 3, s=2),
    _c(128, 128, 3),
    _c(128, 256, 3, s=2),
    _c(256, 256, 3),
    _c(256, 256, 3),
    *[_c(256, 256, 3, d=d) for d in (2, 4, 8, 16)],
    _c(256, 256, 3),
    _c(256, 256, 3),
    ("ConvTranspose2d", 256, 128, 4, 2, 1, 1, True, True, "ReLU"),
    _c(128, 128, 3),
    ("ConvTranspose2d", 128, 64, 4, 2, 1, 1, True, True, "ReLU"),
    _c(64, 32, 3),
    _c(32, 3, 3, act="Sigmoid", bn=False),
]


def _branch(widths: list[int]) -> list[Row]:
    chans = [3, *widths]
    return [
        ("Conv2d", chans[i], chans[i + 1], 5, 2, 2, 1, True, True, "ReLU")
        for i in range(len(widths))
    ]


SPEC_GLOBAL = _branch([64, 128, 256, 512, 512, 512])
SPEC_LOCAL = _branch([64, 128, 256, 512, 512])


def _fingerprint(net: nn.Module) -> list[Row]:
    from inpaintzoo.blocks import ConvNormAct

    rows = []
    for block in net.modules():
        if not isinstance(block, ConvNormAct):
            continue
        m = block.conv
        rows.append(
            (
                type(m).__name__,
                m.in_channels,
                m.out_channels,
                m.kernel_size[0],
                m.stride[0],
                m.padding[0],
                m.dilation[0],
                m.bias is not None,
                isinstance(block.norm, nn.BatchNorm2d),
                type(block.act).__name__,
            )
        )
    return rows


def count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.fixture(scope="module")
def full_nets():
    with torch.device("meta"):
        return build_glcic_nets("full")


# ----------------------------------------------------------------------------- nets (meta)
def test_official_counts_and_the_spec_parts(full_nets):
    assert OFFICIAL_PARAM_COUNTS == {"generator": 6_072_131, "discriminator": 45_063_681}
    d = full_nets["discriminator"]
    assert count(full_nets["generator"]) == 6_072_131
    assert count(d.global_discriminator) == 25_808_384  # spec §6, 6 convs on 256 px
    assert count(d.local_discriminator) == 19_253_248  # 5 convs on 128 px patches
    assert count(d.head) == 2_049  # FC 2048 -> 1
    assert d.global_discriminator.fc.in_features == d.local_discriminator.fc.in_features == 8192
    assert d.global_discriminator.fc.out_features == 1024


def test_full_layer_fingerprints(full_nets):
    assert _fingerprint(full_nets["generator"]) == SPEC_COMPLETION
    d = full_nets["discriminator"]
    assert _fingerprint(d.global_discriminator) == SPEC_GLOBAL
    assert _fingerprint(d.local_discriminator) == SPEC_LOCAL
    assert full_nets["generator"].mean_pixel.shape == (1, 3, 1, 1)  # a buffer, not a parameter
    assert "mean_pixel" in full_nets["generator"].state_dict()


def test_full_intermediate_shapes_at_256(full_nets):
    g, d = full_nets["generator"], full_nets["discriminator"]
    seen = {}
    for name in ("conv1", "conv4", "conv10", "deconv13", "deconv15", "conv17"):
        getattr(g.layers, name).register_forward_hook(
            lambda m, a, o, name=name: seen.update({name: tuple(o.shape)})
        )
    with torch.device("meta"):
        image, mask = torch.empty(2, 3, 256, 256), torch.zeros(2, 1, 256, 256)
        out = g(image, mask)
        global_features = d.global_discriminator.convs(image)
        local_features = d.local_discriminator.convs(torch.empty(2, 3, 128, 128))
        logits = d(image, torch.empty(2, 3, 128, 128))
    assert seen == {
        "conv1": (2, 64, 256, 256),
        "conv4": (2, 256, 64, 64),
        "conv10": (2, 256, 64, 64),  # the dilated stack works at 1/4
        "deconv13": (2, 128, 128, 128),
        "deconv15": (2, 64, 256, 256),
        "conv17": (2, 3, 256, 256),
    }
    assert out.shape == (2, 3, 256, 256)
    assert global_features.shape == local_features.shape == (2, 512, 4, 4)
    assert logits.shape == (2, 1)


def test_completion_network_input_is_the_official_conversion():
    g = build_glcic_nets("tiny", mean_pixel=(0.2, 0.4, 0.6))["generator"].eval()
    torch.manual_seed(0)
    image, mask = torch.rand(2, 3, 16, 20), (torch.rand(2, 1, 16, 20) > 0.6).float()
    mean = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)
    x = g.network_input(image, mask)
    torch.testing.assert_close(x[:, :3], (image - mean) * (1 - mask))  # hole = mean -> 0
    assert torch.equal(x[:, 3:], mask)
    with torch.no_grad():
        out = g(image, mask)
        again = g(torch.where(mask > 0, torch.rand_like(image), image), mask)
    assert torch.equal(out, again)  # hole pixels never read
    assert 0 < out.min() and out.max() < 1  # sigmoid
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.rand(1, 3, 18, 20), torch.zeros(1, 1, 18, 20))


# ----------------------------------------------------------------------------- crops (block)
def test_hole_bounding_boxes_per_sample():
    mask = torch.zeros(3, 1, 10, 12)
    mask[0, :, 2:5, 3:7] = 1
    mask[1, :, 0, 11] = 1
    boxes, has_hole = hole_bounding_boxes(mask)
    assert boxes.tolist() == [[2, 3, 4, 6], [0, 11, 0, 11], [0, 0, 9, 11]]
    assert has_hole.tolist() == [True, True, False]


def test_crop_around_holes_centres_each_sample_and_stays_inside():
    image = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16).requires_grad_(True)
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, 6:10, 4:8] = 1  # centre (8, 6): patch rows 4..11, cols 2..9
    mask[1, :, 14:16, 0:3] = 1  # bottom-left corner: clamped to rows 8..15, cols 0..7
    patches = crop_around_holes(image, mask, 8)
    assert patches.shape == (2, 1, 8, 8)
    assert torch.equal(patches[0, 0], image[0, 0, 4:12, 2:10])
    assert torch.equal(patches[1, 0], image[1, 0, 8:16, 0:8])
    patches.sum().backward()  # gradients reach exactly the cropped pixels
    assert image.grad.sum() == 2 * 64 and image.grad[0, 0, 4:12, 2:10].eq(1).all()
    rect = crop_around_holes(image.detach(), mask, (4, 6))
    assert torch.equal(rect[0, 0], image[0, 0, 6:10, 3:9])
    with pytest.raises(ValueError, match="does not fit"):
        crop_around_holes(image, mask, 17)


def test_random_crops_are_per_sample_and_inside():
    image = torch.arange(16 * 16, dtype=torch.float32).view(1, 1, 16, 16).expand(32, 1, 16, 16)
    patches = random_crops(image, 5, generator=torch.Generator().manual_seed(0))
    tops = (patches[:, 0, 0, 0] // 16).long()
    lefts = (patches[:, 0, 0, 0] % 16).long()
    assert tops.max() <= 11 and lefts.max() <= 11 and len(set(tops.tolist())) > 1
    for i in range(32):
        t, left = int(tops[i]), int(lefts[i])
        assert torch.equal(patches[i, 0], image[i, 0, t : t + 5, left : left + 5])


def test_discriminator_branch_refuses_other_sizes():
    branch = ContextDiscriminatorBranch(3, [8, 16], 32, 10)
    assert branch(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="takes 32x32 inputs"):
        branch(torch.rand(2, 3, 64, 64))


# ----------------------------------------------------------------------------- method
def tiny(**kwargs):
    kwargs.setdefault("perceptual_backbone", "off")
    return zoo.create_model("glcic", variant="tiny", **kwargs)


@pytest.fixture(scope="module")
def batch():
    return embedded_batch(n=4, size=64, seed=3)


def test_schedule_optimiser_and_options():
    model = tiny()
    assert model.inference_nets == ("generator",) and model.size_multiple == 4
    assert model.weights == {"mse": 1.0, "adversarial": 0.0004}
    assert model.resolve_schedule(None) == [
        {"stage": 1, "batches": 90_000},
        {"stage": 2, "batches": 10_000},
        {"stage": 3, "batches": 400_000},
    ]
    assert [e["batches"] for e in tiny().resolve_schedule(1000)] == [180, 20, 800]
    assert [e["batches"] for e in tiny().resolve_schedule(4)] == [1, 1, 2]  # none left empty
    optimizers = model.configure_optimizers()
    assert [type(o).__name__ for o in optimizers] == ["Adadelta", "Adadelta"]
    assert optimizers[0].defaults["lr"] == 1.0 and optimizers[0].defaults["rho"] == 0.9
    assert optimizers[0].defaults["eps"] == 1e-6
    for bad, match in (
        ({"postprocess": "poisson"}, "postprocess"),
        ({"mean_pixel": [0.5, 0.5]}, "mean_pixel"),
        ({"adadelta_rho": 1.0}, "ADADELTA"),
    ):
        with pytest.raises(ValueError, match=match):
            tiny(**bad)
    assert "no post-processing" in " ".join(model.run_notes())


def test_reconstruction_loss_is_the_hole_mse_over_every_element():
    model = tiny()
    image = torch.zeros(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[..., :4, :] = 1  # half of every image
    output = torch.full_like(image, 0.5)  # error 0.5 everywhere; only the hole counts
    assert model.reconstruction_loss(output, image, mask).item() == pytest.approx(0.25 * 0.5)


def test_discriminator_inputs_at_the_training_size_and_at_another(batch):
    model = tiny()
    image, mask = batch["image"], batch["mask"]
    full, patch = model.discriminator_inputs(image, mask)
    assert full is image and patch.shape == (4, 3, 32, 32)
    assert torch.equal(patch, crop_around_holes(image, mask, 32))
    _, real_patch = model.discriminator_inputs(image, mask, real=True)
    assert real_patch.shape == (4, 3, 32, 32)
    big = F.interpolate(image, size=(96, 128), mode="bilinear", align_corners=False)
    big_mask = F.interpolate(mask, size=(96, 128), mode="nearest")
    full, patch = model.discriminator_inputs(big, big_mask)
    # resized to the branches' sizes; the patch covers local/image = 1/2 of each side
    assert full.shape == (4, 3, 64, 64) and patch.shape == (4, 3, 32, 32)
    expected = F.interpolate(
        crop_around_holes(big, big_mask, (48, 64)),
        size=(32, 32),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    torch.testing.assert_close(patch, expected)


def _spy_training(model, batch, batches):
    calls = []
    orig_step, orig_opt = model.discriminator_step, model.optimize

    def step_spy(name, real, fake, **kwargs):
        calls.append(("d_step", kwargs.get("scale", 1.0), model.generator.training))
        return orig_step(name, real, fake, **kwargs)

    def opt_spy(losses, names, terms=None):
        calls.append(("optimize", names, tuple(sorted(terms or {}))))
        return orig_opt(losses, names, terms)

    model.discriminator_step, model.optimize = step_spy, opt_spy
    fit(model, batch, batches)
    return calls


def test_three_phases_train_what_the_paper_says(batch):
    torch.manual_seed(0)
    model = tiny(schedule=[{"stage": s, "batches": 1} for s in (1, 2, 3)])
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    stats = []
    orig_batch = model.training_batch

    def batch_spy(b):
        g_now = [p.detach().clone() for p in model.generator.parameters()]
        d_now = [p.detach().clone() for p in model.discriminator.parameters()]
        stats.append((model.current_stage(), g_now, d_now))
        return orig_batch(b)

    model.training_batch = batch_spy
    calls = _spy_training(model, batch, 3)
    alpha = 0.0004
    assert calls == [
        ("optimize", "generator", ("mse",)),  # phase 1: completion network, MSE alone
        ("d_step", 1.0, False),  # phase 2: D alone on the GAN objective, C fixed (eval mode)
        ("optimize", "discriminator", ()),
        ("d_step", alpha, True),  # phase 3: D on alpha GAN first ...
        ("optimize", "discriminator", ()),
        ("optimize", "generator", ("adversarial", "mse")),  # ... then C on MSE + alpha GAN
    ]
    (s1, g1, d1), (s2, g2, d2), (s3, g3, d3) = stats
    assert (s1, s2, s3) == (1, 2, 3)
    assert all(torch.equal(a, b) for a, b in zip(g_before, g1))
    assert not all(torch.equal(a, b) for a, b in zip(g1, g2))  # phase 1 moved C
    assert all(torch.equal(a, b) for a, b in zip(d1, d2))  # ... not D
    assert all(torch.equal(a, b) for a, b in zip(g2, g3))  # phase 2 moved D, not C
    assert not all(torch.equal(a, b) for a, b in zip(d2, d3))
    assert model.trained_batches == {"generator": 2, "discriminator": 2}


def test_joint_phase_loss_values(batch):
    """C's loss is MSE + alpha * BCE(D(completed), 1); D's is alpha * (BCE(D(real), 1) +
    BCE(D(completed), 0)): recomputed from the logged terms and a spy on the D step."""
    torch.manual_seed(0)
    model = tiny(stage=3)
    model.trained_batches = {"generator": 1, "discriminator": 1}  # as init_from gives
    seen = {}
    orig_step = model.discriminator_step

    def step_spy(name, real, fake, **kwargs):
        loss, real_out = orig_step(name, real, fake, **kwargs)
        with torch.no_grad():
            seen["unscaled"] = model.adversarial_loss.discriminator_loss(
                model.discriminator(*real), model.discriminator(*fake)
            )
        seen["loss"] = float(loss.detach())
        return loss, real_out

    logs = {}
    orig_batch = model.training_batch
    model.discriminator_step = step_spy
    model.training_batch = lambda b: logs.update(orig_batch(b)) or logs
    fit(model, batch, 1)
    g = logs["g_mse"] + 0.0004 * logs["g_adversarial"]
    assert float(logs["g"]) == pytest.approx(float(g), rel=1e-6)
    assert 0.2 < float(logs["g_adversarial"]) < 5  # a BCE of a barely trained D, not 0
    # the same D loss up to the D update in between: alpha times a BCE pair of ~2 * log 2
    assert seen["loss"] == pytest.approx(0.0004 * float(seen["unscaled"]), rel=0.2)


def test_phase_two_alone_needs_a_trained_generator(batch):
    from inpaintzoo.methods.base import StageRequirementError

    with pytest.raises(StageRequirementError, match="needs a trained generator"):
        fit(tiny(stage=2), batch, 1)


# ----------------------------------------------------------------------------- post-processing
def _ramp_and_texture(h: int = 64, w: int = 64) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([0.2 + 0.5 * xx, 0.3 + 0.4 * yy, 0.5 + 0.2 * xx * yy])
    return (base + 0.15 * torch.sin(xx * 40) * torch.cos(yy * 33))[None].clamp(0, 1)


def test_poisson_blending_removes_a_colour_offset_of_the_fill():
    """Telea + seamlessClone keeps the fill's gradients and takes its level from the hole's
    border: a fill equal to the truth plus 0.12 comes back within 0.05 (mean, interior of an
    even-sized box, where the official centre formula would misplace it by a pixel: 0.065)."""
    image = _ramp_and_texture()
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:36, 22:42] = 1
    completed = (image + 0.12) * mask + image * (1 - mask)
    out = telea_poisson_blend(completed, mask)
    interior = (-F.max_pool2d(-mask, 3, 1, 1)).expand_as(image) > 0
    assert (completed - image).abs()[interior].mean() == pytest.approx(0.12, abs=1e-3)
    assert (out - image).abs()[interior].mean() < 0.05
    known = (mask == 0).expand_as(image)
    assert (out - image).abs()[known].max() <= 0.5 / 255 + 1e-6  # 8-bit known pixels
    # no hole: returned as given; a hole touching the image border works too
    torch.testing.assert_close(telea_poisson_blend(image, torch.zeros_like(mask)), image)
    corner = torch.zeros_like(mask)
    corner[..., :20, :15] = 1
    assert telea_poisson_blend(image * (1 - corner) + corner, corner).shape == image.shape


def test_postprocess_option_and_per_call_override(batch):
    model = tiny(postprocess="telea_poisson").eval()
    image, mask = batch["image"][:2], batch["mask"][:2]
    post = model.inpaint(image, mask)
    plain = model.inpaint(image, mask, postprocess="none")
    assert set(post) >= {"output", "network_output", "composite"}
    torch.testing.assert_close(post["network_output"], plain["output"])
    hole = mask.expand_as(image) > 0
    assert not torch.allclose(post["composite"][hole], plain["composite"][hole])
    assert torch.equal(post["composite"][~hole], image[~hole])
    expected = telea_poisson_blend(plain["composite"], mask)
    torch.testing.assert_close(post["output"], expected)
    assert "Poisson" in " ".join(model.run_notes())


@pytest.mark.slow
def test_full_size_joint_step_at_256():
    """The paper's networks at their training size: completion output, both discriminator
    branches and one joint-phase loss, backward into every network."""
    torch.manual_seed(0)
    model = zoo.create_model("glcic", variant="full")
    b = embedded_batch(n=2, size=256, seed=0)
    image, mask = b["image"], b["mask"]
    output = model.generator(image, mask)
    completed = output * mask + image * (1 - mask)
    logits = model.discriminator(*model.discriminator_inputs(completed, mask))
    adversarial = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    loss = model.reconstruction_loss(output, image, mask) + 0.0004 * adversarial
    loss.backward()
    assert output.shape == (2, 3, 256, 256) and logits.shape == (2, 1)
    assert model.generator.layers.conv1.conv.weight.grad.abs().sum() > 0
    assert model.discriminator.local_discriminator.convs[0].conv.weight.grad.abs().sum() > 0
