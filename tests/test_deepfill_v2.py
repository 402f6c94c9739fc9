"""DeepFill v2's own facts: networks against specs/deepfill_v2.md §3-§5, §8 (gated layers split in
halves, output layers plain, component counts with and without the sketch channel, layer
fingerprints written from the spec tables, shapes at 256 px on the meta device), the loss values
(whole-image L1, hinge with 0.5 on each side on every SN-PatchGAN element), the sketch (Canny
edges of the ground truth in training, the user's strokes at inference and through
``inpaintzoo-predict ... sketch=``) and the recipe-rate training. The registry-wide contract
tests (tests/test_contract.py) cover counts, CLI, learning, checkpoints, predictor and export."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from helpers import embedded_batch, fit
from inpaintzoo import zoo
from inpaintzoo.blocks import DeepFillSNPatchGAN, GatedConv2d, has_spectral_norm
from inpaintzoo.conventions import to_signed
from inpaintzoo.nets.deepfill_v2 import (
    OFFICIAL_PARAM_COUNTS,
    OFFICIAL_PARAM_COUNTS_SKETCH,
    build_deepfill_v2_nets,
)
from inpaintzoo.structure import rgb_to_gray

# ----------------------------------------------------------------------------- spec tables
# A row: (name, in, conv out, kernel, stride, dilation, feature activation, nearest x2 first,
# gated), from the table of specs/deepfill_v2.md §4 (cnum 48): a gated layer's conv has ``out``
# outputs and passes on ``out / 2`` channels; the output layers are plain convs.
ATROUS = [(2, 7), (4, 8), (8, 9), (16, 10)]


def g(name, cin, cout, k=3, s=1, d=1, act="ELU", up=False):
    return (name, cin, cout, k, s, d, act, up, True)


def plain(name, cin):
    return (name, cin, 3, 3, 1, 1, "Identity", False, False)


def spec_coarse(cin: int) -> list[tuple]:
    return [
        g("conv1", cin, 48, k=5),
        g("conv2_downsample", 24, 96, s=2),
        g("conv3", 48, 96),
        g("conv4_downsample", 48, 192, s=2),
        g("conv5", 96, 192),
        g("conv6", 96, 192),
        *[g(f"conv{i}_atrous", 96, 192, d=d) for d, i in ATROUS],
        g("conv11", 96, 192),
        g("conv12", 96, 192),
        g("conv13_upsample", 96, 96, up=True),
        g("conv14", 48, 96),
        g("conv15_upsample", 48, 48, up=True),
        g("conv16", 24, 24),
        plain("conv17", 12),
    ]


SPEC_XCONV = [
    g("xconv1", 3, 48, k=5),
    g("xconv2_downsample", 24, 48, s=2),
    g("xconv3", 24, 96),
    g("xconv4_downsample", 48, 96, s=2),
    g("xconv5", 48, 192),
    g("xconv6", 96, 192),
    *[g(f"xconv{i}_atrous", 96, 192, d=d) for d, i in ATROUS],
]
SPEC_PMCONV = [
    g("pmconv1", 3, 48, k=5),
    g("pmconv2_downsample", 24, 48, s=2),
    g("pmconv3", 24, 96),
    g("pmconv4_downsample", 48, 192, s=2),
    g("pmconv5", 96, 192),
    g("pmconv6", 96, 192, act="ReLU"),
]
SPEC_PM_POST = [g("pmconv9", 96, 192), g("pmconv10", 96, 192)]
SPEC_ALLCONV = [
    g("allconv11", 192, 192),
    g("allconv12", 96, 192),
    g("allconv13_upsample", 96, 96, up=True),
    g("allconv14", 48, 96),
    g("allconv15_upsample", 48, 48, up=True),
    g("allconv16", 24, 24),
    plain("allconv17", 12),
]


def stage_fingerprint(stage: nn.Sequential) -> list[tuple]:
    rows = []
    for name, layer in stage.named_children():
        upsampled = isinstance(layer, nn.Sequential)
        if upsampled:
            assert isinstance(layer.up, nn.Upsample) and layer.up.mode == "nearest"
            layer = layer.conv
        gated = isinstance(layer.conv, GatedConv2d)
        act = layer.conv.act if gated else layer.act
        conv = layer.conv.conv if gated else layer.conv
        if gated:  # one conv split in halves
            assert conv.out_channels == 2 * layer.conv.out_channels
        k, d = conv.kernel_size[0], conv.dilation[0]
        assert conv.padding[0] == d * (k - 1) // 2 and conv.bias is not None
        rows.append(
            (name, conv.in_channels, conv.out_channels, k, conv.stride[0], d)
            + (type(act).__name__, upsampled, gated)
        )
    return rows


def count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "sketch"])
def full_nets(request):
    with torch.device("meta"):
        return request.param, build_deepfill_v2_nets("full", sketch=request.param)


# ----------------------------------------------------------------------------- nets (meta)
def test_official_counts_with_and_without_the_sketch(full_nets):
    sketch, nets = full_nets
    expected = OFFICIAL_PARAM_COUNTS_SKETCH if sketch else OFFICIAL_PARAM_COUNTS
    assert OFFICIAL_PARAM_COUNTS == {"generator": 4_052_478, "discriminator": 5_946_816}
    assert OFFICIAL_PARAM_COUNTS_SKETCH == {"generator": 4_053_678, "discriminator": 5_948_416}
    assert {k: count(v) for k, v in nets.items()} == expected
    gen = nets["generator"]
    assert count(gen.coarse) == (1_632_351 if sketch else 1_631_151)
    assert count(gen.refine_conv) == 990_000
    assert count(gen.refine_attention, gen.refine_attention_post) == 782_352
    assert count(gen.merge) == 648_975


def test_generator_layer_fingerprint(full_nets):
    sketch, nets = full_nets
    gen = nets["generator"]
    assert stage_fingerprint(gen.coarse) == spec_coarse(6 if sketch else 5)
    assert stage_fingerprint(gen.refine_conv) == SPEC_XCONV
    assert stage_fingerprint(gen.refine_attention) == SPEC_PMCONV
    assert stage_fingerprint(gen.refine_attention_post) == SPEC_PM_POST
    assert stage_fingerprint(gen.merge) == SPEC_ALLCONV
    ca = gen.attention
    assert (ca.kernel_size, ca.rate, ca.softmax_scale, ca.fuse) == (3, 2, 10, True)
    assert gen.output == "tanh" and not gen.refine_with_mask and gen.gated


def test_sn_patchgan_fingerprint_and_shape(full_nets):
    sketch, nets = full_nets
    d = nets["discriminator"]
    assert isinstance(d, DeepFillSNPatchGAN)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    chans = [5 if sketch else 4, 64, 128, 256, 256, 256, 256]
    assert [(c.in_channels, c.out_channels) for c in convs] == list(zip(chans, chans[1:]))
    for c in convs:
        assert (c.kernel_size, c.stride, c.padding) == ((5, 5), (2, 2), (2, 2))
        assert c.bias is not None and has_spectral_norm(c)
    acts = [m for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 6 and all(a.negative_slope == 0.2 for a in acts)
    assert isinstance(list(d.convs[-1].children())[-1], nn.LeakyReLU)  # after the last layer too
    with torch.device("meta"):
        out = d(torch.empty(2, chans[0], 256, 256))
    assert out.shape == (2, 256, 4, 4)  # every element a logit, no 1-channel head


def test_intermediate_shapes_at_256(full_nets):
    sketch, nets = full_nets
    gen = nets["generator"]
    shapes = {}
    hooks = [
        getattr(gen, n).register_forward_hook(
            lambda m, a, o, n=n: shapes.update({n: (tuple(a[0].shape[1:]), tuple(o.shape[1:]))})
        )
        for n in ("coarse", "refine_conv", "refine_attention", "attention", "merge")
    ]
    with torch.device("meta"):
        guide = torch.zeros(2, 1, 256, 256) if sketch else None
        coarse, output = gen(torch.empty(2, 3, 256, 256), torch.zeros(2, 1, 256, 256), guide)
    for h in hooks:
        h.remove()
    assert shapes["coarse"] == ((6 if sketch else 5, 256, 256), (3, 256, 256))
    assert shapes["refine_conv"] == ((3, 256, 256), (96, 64, 64))  # 3-channel stage-2 input
    assert shapes["refine_attention"] == ((3, 256, 256), (96, 64, 64))
    assert shapes["attention"] == ((96, 64, 64), (96, 64, 64))
    assert shapes["merge"] == ((192, 64, 64), (3, 256, 256))
    assert coarse.shape == output.shape == (2, 3, 256, 256)


def open_gates(net: nn.Module, gain: float = 2.5) -> nn.Module:
    """Scale every conv weight: at the official initialisation (Glorot, zero bias) the gated
    layers shrink the signal about 6x in energy each, so an untrained generator's output does not
    depend on its input (0.5 everywhere); scaled, it does."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(gain)
    return net


def test_tanh_outputs_and_the_guide_only_inside_the_hole():
    torch.manual_seed(0)
    untrained = build_deepfill_v2_nets("tiny")["generator"].eval()
    x, m = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    with torch.no_grad():  # the vanishing signal at the official initialisation
        assert (untrained(x, m)[1] - 0.5).abs().max() < 1e-4
    gen = open_gates(build_deepfill_v2_nets("tiny", sketch=True)["generator"]).eval()
    x, m = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    m[..., 8:24, 8:24] = 1
    strokes = torch.zeros_like(m)
    strokes[..., 16, :] = 1
    with torch.no_grad():
        a = gen(x, m, strokes)
        b = gen(x, m, strokes * m)  # strokes outside the hole do not count
        c = gen(x, m, None)  # no guide: an empty sketch
        d = gen(x, m, torch.zeros_like(m))
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(c, d)
    assert not torch.allclose(a[1], c[1])
    assert 0 < a[1].min() and a[1].max() < 1  # tanh, mapped to [0, 1]


# ----------------------------------------------------------------------------- method
def tiny(**kwargs):
    kwargs.setdefault("perceptual_backbone", "off")
    kwargs.setdefault("structure_scale", 0.5)
    return zoo.create_model("deepfill_v2", variant="tiny", **kwargs)


@pytest.fixture(scope="module")
def batch():
    return embedded_batch(n=4, size=64, seed=3)


def test_module_attributes_and_options():
    model = tiny()
    assert model.method_name == "deepfill_v2" and model.inference_nets == ("generator",)
    assert model.lr == 1e-4 and model.betas == (0.5, 0.999) and model.d2g_lr == 1.0
    assert model.gan_loss == "hinge" and model.weights == {"l1": 1.0, "adversarial": 1.0}
    assert model.contract.guidance == ("edge_sketch",) and not model.sketch
    assert model.size_multiple == 8 and model.value_range == "[-1,1]"
    assert tiny(sketch=True).sketch and model.canny_sigma == 1.0  # 2 at 256 px, x 0.5


def test_l1_term_on_known_inputs(batch):
    image = batch["image"]
    terms = tiny().reconstruction_terms(image, image + 0.1, image + 0.05)
    # plain means over the whole image on [-1, 1]: 0.2 + 0.1
    assert float(terms["l1"]) == pytest.approx(0.3, rel=1e-5)


@pytest.mark.parametrize("sketch", [False, True])
def test_hinge_losses_on_every_patch_element_and_the_discriminator_inputs(batch, sketch):
    """D loss = 0.5 mean(relu(1 - D(real))) + 0.5 mean(relu(1 + D(fake))), G adversarial =
    -mean(D(fake)), recomputed from copies of D taken when each term starts (train mode: one
    spectral-norm power iteration per forward, as in the step); D sees cat(image in [-1, 1],
    mask [, sketch]) with the composite as the fake."""
    model = tiny(sketch=sketch)
    seen = {}
    orig_step, orig_adv = model.discriminator_step, model.generator_adversarial

    def step_spy(name, real, fake, **kwargs):
        seen.update(d_disc=copy.deepcopy(model.discriminator), real=real, fake=fake.detach())
        loss, out = orig_step(name, real, fake, **kwargs)
        seen["d_loss"] = float(loss)
        return loss, out

    def adv_spy(name, fake, real_out=None):
        seen["g_disc"] = copy.deepcopy(model.discriminator)
        loss, out = orig_adv(name, fake, real_out)
        seen["g_adv"] = float(loss)
        return loss, out

    guides = []
    model.generator.register_forward_pre_hook(lambda m, a: guides.append(a[2]))
    model.discriminator_step, model.generator_adversarial = step_spy, adv_spy
    fit(model, batch, 1)
    image, mask = batch["image"], batch["mask"]
    real, fake = seen["real"], seen["fake"]
    assert real.shape[1] == (5 if sketch else 4)
    torch.testing.assert_close(real[:, :3], to_signed(image))
    assert torch.equal(real[:, 3:4], mask) and torch.equal(fake[:, 3:4], mask)
    torch.testing.assert_close(fake[:, :3] * (1 - mask), to_signed(image) * (1 - mask))
    if sketch:  # Canny edges of the ground truth, inside the hole only, for G and D alike
        expected = model.edge_map(rgb_to_gray(image)) * mask
        assert torch.equal(guides[0], expected) and expected.sum() > 0
        assert torch.equal(real[:, 4:5], expected) and torch.equal(fake[:, 4:5], expected)
    else:
        assert guides[0] is None
    with torch.no_grad():
        d = seen["d_disc"].train()
        d_real, d_fake = d(real), d(fake)
        g_fake = seen["g_disc"].train()(fake)
    assert d_real.shape[1:] == (4 * 32, 1, 1)  # tiny D (width 32) at 64 px: 128 x 1 x 1 logits
    expected_d = 0.5 * F.relu(1 - d_real).mean() + 0.5 * F.relu(1 + d_fake).mean()
    assert seen["d_loss"] == pytest.approx(float(expected_d), rel=1e-5)
    assert seen["g_adv"] == pytest.approx(float(-g_fake.mean()), rel=1e-5)


def test_one_discriminator_step_then_one_generator_step(batch):
    model = tiny()
    calls = []
    orig = model.optimize
    model.optimize = lambda losses, names, terms=None: (
        calls.append(names) or orig(losses, names, terms)
    )
    fit(model, batch, 2)
    assert calls == ["discriminator", "generator"] * 2


def test_learns_at_the_recipe_rate(batch):
    """At the recipe's lr 1e-4 (the registry learning check runs at 1e-3, see the contract):
    in 20 batches both players move the right way, measured L1 0.3714 -> 0.3698 and hinge D loss
    1.00 -> 0.87."""
    torch.manual_seed(0)
    model = tiny()
    logs = []
    orig = model.training_batch
    model.training_batch = lambda b: logs.append(orig(b)) or logs[-1]
    fit(model, batch, 20)
    l1 = [float(entry["l1"]) for entry in logs]
    d = [float(entry["d"]) for entry in logs]
    assert all(b < a for a, b in zip(l1[::5], l1[5::5]))  # the L1 term falls every 5 batches
    assert l1[-1] < l1[0] - 1e-3
    assert d[0] > 0.99 and d[-1] < 0.95


# ----------------------------------------------------------------------------- the sketch
def test_edge_sketch_guides_the_hole_only_for_a_sketch_model(batch):
    torch.manual_seed(0)
    model = tiny(sketch=True).eval()
    open_gates(model.generator)
    image, mask = batch["image"], batch["mask"]
    strokes = torch.zeros_like(mask)
    strokes[..., 30:32, :] = 1.0
    plain_out = model.inpaint(image, mask)
    guided = model.inpaint(image, mask, edge_sketch=strokes)
    assert torch.equal(guided["edge"], strokes * mask) and plain_out["edge"].sum() == 0
    assert not torch.allclose(guided["output"], plain_out["output"])
    outside = model.inpaint(image, mask, edge_sketch=strokes * (1 - mask))
    torch.testing.assert_close(outside["output"], plain_out["output"])
    with pytest.raises(ValueError, match="edge_sketch of shape"):
        model.inpaint(image, mask, edge_sketch=strokes[..., :32, :32])
    with pytest.raises(ValueError, match="model.sketch=true"):
        tiny().eval().inpaint(image, mask, edge_sketch=strokes)


def _save_checkpoint(model, path):
    import pytorch_lightning as pl

    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)


def test_predict_cli_passes_the_sketch_file(tmp_path):
    from hydra import compose, initialize_config_dir

    from helpers import embedded_batch as photos
    from inpaintzoo.cli.predict import run_predict

    torch.manual_seed(0)
    sketch_model = tiny(sketch=True)
    open_gates(sketch_model.generator)
    _save_checkpoint(sketch_model, tmp_path / "sketch.ckpt")
    _save_checkpoint(tiny(), tmp_path / "plain.ckpt")
    image = (photos(n=1, size=80)["image"][0, :, :53, :70].permute(1, 2, 0) * 255).byte().numpy()
    Image.fromarray(image).save(tmp_path / "image.png")
    hole = np.zeros((53, 70), np.uint8)
    hole[15:40, 20:55] = 255
    Image.fromarray(hole).save(tmp_path / "mask.png")
    strokes = np.zeros((53, 70), np.uint8)
    strokes[25:27, :] = 255
    Image.fromarray(strokes).save(tmp_path / "strokes.png")

    def predict(ckpt, out, *extra):
        with initialize_config_dir(config_dir=str(zoo_conf()), version_base="1.3"):
            cfg = compose(
                config_name="predict",
                overrides=[
                    f"ckpt={tmp_path / ckpt}",
                    f"input.image={tmp_path / 'image.png'}",
                    f"input.mask={tmp_path / 'mask.png'}",
                    f"out={tmp_path / out}",
                    *extra,
                ],
            )
        run_predict(cfg)
        return np.asarray(Image.open(tmp_path / out))

    sketch_arg = f"input.sketch={tmp_path / 'strokes.png'}"
    without = predict("sketch.ckpt", "a.png")
    with_sketch = predict("sketch.ckpt", "b.png", sketch_arg)
    assert with_sketch.shape == (53, 70, 3) and not np.array_equal(without, with_sketch)
    known = hole == 0
    assert np.array_equal(with_sketch[known], image[known])
    with pytest.raises(ValueError, match="model.sketch=true"):
        predict("plain.ckpt", "c.png", sketch_arg)


def zoo_conf():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "conf"


@pytest.mark.slow
def test_full_size_training_batch_at_the_smallest_size():
    """The full networks (official counts, sketch channel on) through one training batch at
    64 px (the SN-PatchGAN's six stride-2 layers reach 1 x 1), batch 2."""
    torch.manual_seed(0)
    model = zoo.create_model("deepfill_v2", sketch=True, structure_scale=0.25)
    b = embedded_batch(n=2, size=64, seed=1)
    before = model.generator.merge.allconv17.conv.weight.detach().clone()
    fit(model, b, 1)
    assert not torch.equal(before, model.generator.merge.allconv17.conv.weight)
    out = model.eval().inpaint(b["image"], b["mask"])
    assert out["output"].shape == (2, 3, 64, 64) and torch.isfinite(out["composite"]).all()
