"""CTSDG's own facts: networks against specs/ctsdg.md §3-§5 (component counts, layer
fingerprints, shapes) and the LightningModule (loss values, G-then-D order, fine-tuning with
frozen BN and fresh optimizers, the paper schedule). The registry-wide contract tests
(tests/test_contract.py) cover counts, CLI, learning, checkpoints, predictor and export.
Full-size nets live on the meta device; full-size compute only in the slow test."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import embedded_batch, fit
from inpaintzoo import zoo
from inpaintzoo.blocks import has_spectral_norm
from inpaintzoo.blocks.partial_conv import PartialConv2d, PartialConvBlock
from inpaintzoo.losses import MissingWeightsError, VGGFeatures
from inpaintzoo.nets.ctsdg import OFFICIAL_PARAM_COUNTS, build_ctsdg_nets

# ----------------------------------------------------------------------------- spec tables
# A row: (type, in, out, kernel, stride, padding, dilation, bias, spectral_norm), written from
# the spec's layer lists (not from the modules under test).
Row = tuple[str, int, int, int, int, int, int, bool, bool]

WIDTHS = [64, 128, 256, 512, 512, 512, 512]
KERNELS = [7, 5, 5, 3, 3, 3, 3]


def _encoder(cin: int) -> list[Row]:
    rows, prev = [], cin
    for w, k in zip(WIDTHS, KERNELS):
        rows.append(("PConv", prev, w, k, 2, k // 2, 1, False, False))
        prev = w
    return rows


def _decoder(cin: int) -> list[Row]:
    # dc_7, dc_6, dc_5: 1024->512; dc_4: 768->256; dc_3: 384->128; dc_2: 192->64; dc_1: 64+in->64
    ins = [1024, 1024, 1024, 768, 384, 192, 64 + cin]
    outs = [512, 512, 512, 256, 128, 64, 64]
    return [("PConv", i, o, 3, 1, 1, 1, False, False) for i, o in zip(ins, outs)]


def _projection(out: int) -> list[Row]:
    return [
        ("Conv2d", 64, 16, 3, 1, 1, 1, False, False),
        ("Conv2d", 16, 64, 3, 1, 1, 1, False, False),
        ("Conv2d", 64, out, 1, 1, 0, 1, True, False),
    ]


SPEC_GENERATOR: list[Row] = [
    *_encoder(3),
    *_encoder(2),
    *_decoder(3),
    *_decoder(2),
    *_projection(1),  # Feature2Structure
    *_projection(3),  # Feature2Texture
    ("Conv2d", 128, 64, 3, 1, 1, 1, True, False),  # Bi-GFF structure gate
    ("Conv2d", 128, 64, 3, 1, 1, 1, True, False),  # Bi-GFF texture gate
    ("Conv2d", 128, 64, 3, 2, 1, 1, True, False),  # fusion_layer1
    *[("Conv2d", 64, 64, 3, 1, d, d, True, False) for d in (1, 2, 4, 8)],  # MSFA branches
    ("Conv2d", 64, 64, 3, 1, 1, 1, True, False),  # MSFA weight branch
    ("Conv2d", 64, 4, 1, 1, 0, 1, True, False),
    ("Conv2d", 128, 64, 3, 1, 1, 1, True, False),  # fusion_layer2
    ("Conv2d", 192, 3, 1, 1, 0, 1, True, False),  # out_layer
]


def _patch(cin: int) -> list[Row]:
    chans, strides = [cin, 64, 128, 256, 512, 1], [2, 2, 2, 1, 1]
    return [("Conv2d", chans[i], chans[i + 1], 4, strides[i], 1, 1, False, True) for i in range(5)]


SPEC_DISCRIMINATOR: list[Row] = [
    *_patch(3),
    *_patch(2),
    ("Conv2d", 3, 16, 3, 1, 1, 1, True, False),  # edge detector
    ("Conv2d", 16, 16, 3, 1, 1, 1, True, False),
    ("Conv2d", 16, 16, 3, 1, 1, 1, True, False),
    ("Conv2d", 16, 1, 1, 1, 0, 1, True, False),
]


def _fingerprint(net: nn.Module) -> list[Row]:
    rows = []
    for name, m in net.named_modules():
        if "parametrizations" in name or not isinstance(m, nn.Conv2d):
            continue
        kind = "PConv" if isinstance(m, PartialConv2d) else "Conv2d"
        rows.append(
            (
                kind,
                m.in_channels,
                m.out_channels,
                m.kernel_size[0],
                m.stride[0],
                m.padding[0],
                m.dilation[0],
                m.bias is not None,
                has_spectral_norm(m),
            )
        )
    return rows


@pytest.fixture(scope="module")
def full_nets():
    with torch.device("meta"):
        return build_ctsdg_nets("full")


# ----------------------------------------------------------------------------- nets (meta)


def test_official_counts_are_the_spec_numbers():
    assert OFFICIAL_PARAM_COUNTS == {"generator": 52_147_789, "discriminator": 5_531_729}


def test_component_counts_match_the_spec_table(full_nets):
    g, d = full_nets["generator"], full_nets["discriminator"]

    def count(*mods):
        return sum(p.numel() for m in mods for p in m.parameters())

    assert count(g.texture_encoder, g.texture_decoder) == 25_816_704
    assert count(g.structure_encoder, g.structure_decoder) == 25_812_992
    assert count(g.structure_feature_projection) == 18_657
    assert count(g.texture_feature_projection) == 18_787
    assert count(g.bigff) == 147_586
    assert count(g.fusion_layer1) == count(g.fusion_layer2) == 73_792
    assert count(g.cfa) == 184_900 and count(g.out_layer) == 579
    assert count(d.texture_branch) == 2_763_776 and count(d.structure_branch) == 2_762_752
    assert count(d.edge_detector) == 5_201


def test_full_layer_fingerprints(full_nets):
    assert _fingerprint(full_nets["generator"]) == SPEC_GENERATOR
    assert _fingerprint(full_nets["discriminator"]) == SPEC_DISCRIMINATOR


def test_partial_conv_blocks_norms_activations_and_masks(full_nets):
    g = full_nets["generator"]
    for enc in (g.texture_encoder, g.structure_encoder):
        blocks = list(enc.levels)
        assert [b.bn is not None for b in blocks] == [False] + [True] * 6  # ec_1 has no BN
        assert all(isinstance(b.activation, nn.ReLU) for b in blocks)
    for dec in (g.texture_decoder, g.structure_decoder):
        assert list(dec.stages) == [f"dc_{i}" for i in range(7, 0, -1)]
        for block in dec.stages.values():
            assert isinstance(block, PartialConvBlock) and block.bn is not None
            assert block.activation.negative_slope == 0.2
    assert all(m.multi_channel for m in g.modules() if isinstance(m, PartialConv2d))
    assert g.bigff.texture_gamma.numel() == 1 and g.bigff.structure_gamma.numel() == 1


def test_full_intermediate_shapes_at_256(full_nets):
    g, d = full_nets["generator"], full_nets["discriminator"]
    with torch.device("meta"):
        x, m = torch.empty(2, 3, 256, 256), torch.zeros(2, 1, 256, 256)
        f = g.features(x, m, m, m)
        logits, edge_logits = d(x, m)
    sizes = [tuple(t.shape[1:]) for t in f["texture_features"]]
    assert sizes == [(3, 256, 256)] + [(w, 256 >> i, 256 >> i) for i, w in enumerate(WIDTHS, 1)]
    assert [t.shape[1] for t in f["texture_masks"]] == [3, *WIDTHS]  # multi-channel masks
    assert f["structure_features"][-1].shape == (2, 512, 2, 2)
    assert f["F_t"].shape == f["F_s"].shape == (2, 64, 256, 256)
    assert f["fused"].shape == (2, 128, 256, 256) and f["cfa"].shape == (2, 64, 128, 128)
    assert f["output"].shape == f["projected_image"].shape == (2, 3, 256, 256)
    assert f["projected_edge"].shape == (2, 1, 256, 256)
    assert logits.shape == (2, 2, 30, 30) and edge_logits.shape == (2, 1, 256, 256)


def test_generator_rejects_bad_sizes(full_nets):
    with torch.device("meta"), pytest.raises(ValueError, match="divisible by 128"):
        x = torch.empty(1, 3, 192, 192)
        full_nets["generator"](x, x[:, :1], x[:, :1], x[:, :1])


# ----------------------------------------------------------------------------- tiny nets


@pytest.fixture
def tiny_nets():
    torch.manual_seed(0)
    return build_ctsdg_nets("tiny")


def test_decoders_start_from_the_other_stream(tiny_nets):
    g = tiny_nets["generator"].eval()
    seen = {}
    g.texture_decoder.register_forward_hook(lambda m, a, o: seen.update(t=a[0]))
    g.structure_decoder.register_forward_hook(lambda m, a, o: seen.update(s=a[0]))
    x, m = torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.7).float()
    f = g.features(x, m, x[:, :1], m)
    assert seen["t"] is f["structure_features"][-1]
    assert seen["s"] is f["texture_features"][-1]


def test_generator_never_sees_the_hole(tiny_nets):
    g = tiny_nets["generator"].eval()
    torch.manual_seed(1)
    x, m = torch.rand(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.6).float()
    e, gray = (torch.rand(2, 1, 64, 64) > 0.8).float(), x.mean(1, keepdim=True)
    noise = torch.rand_like(x)
    with torch.no_grad():
        a = g(x, e, gray, m)
        b = g(torch.where(m > 0, noise, x), torch.where(m > 0, 1 - e, e), gray + m * 0.3, m)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    assert 0 <= a["output"].min() and a["output"].max() <= 1


def test_discriminator_uses_learned_edges_for_fakes(tiny_nets):
    d = tiny_nets["discriminator"].eval()
    x, gray = torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64)
    real_edge = torch.zeros(2, 1, 64, 64)
    with torch.no_grad():
        real, e1 = d(x, gray, real_edge)
        fake, e2 = d(x, gray)
        expected, _ = d.structure_branch(torch.cat([torch.sigmoid(e2), gray], dim=1))
    assert torch.equal(real[:, :1], fake[:, :1]) and torch.equal(e1, e2)
    assert torch.allclose(fake[:, 1:], expected) and not torch.allclose(real[:, 1:], fake[:, 1:])


# ----------------------------------------------------------------------------- method


def tiny(**kwargs):
    kwargs.setdefault("perceptual_backbone", "off")
    kwargs.setdefault("canny_sigma", 1.0)
    return zoo.create_model("ctsdg", variant="tiny", **kwargs)


@pytest.fixture(scope="module")
def batch():
    return embedded_batch(n=4, size=64, seed=3)


def test_module_attributes_and_paper_schedule():
    model = tiny()
    assert model.method_name == "ctsdg" and model.inference_nets == ("generator",)
    assert model.size_multiple == 32 and model.min_size == 32  # tiny: 5 levels
    assert model.hparams["size_multiple"] == 32
    assert model.contract.size_multiple == 128  # the full variant's 7 levels
    assert model.betas == (0.9, 0.999) and model.lr == 2e-4 and model.d2g_lr == 0.1
    # the paper's lengths without a run length; 75/25 % of a scaled run
    assert tiny().resolve_schedule(None) == [
        {"stage": "train", "batches": 300_000, "lr": 2e-4},
        {"stage": "finetune", "batches": 100_000, "lr": 5e-5},
    ]
    assert [e["batches"] for e in tiny().resolve_schedule(1000)] == [750, 250]
    with pytest.raises(ValueError, match="unknown ctsdg stage"):
        tiny(stage="joint")
    with pytest.raises(ValueError, match="bad schedule entry"):
        tiny(schedule=[{"stage": "train", "batches": 1, "learning_rate": 1}])
    with pytest.raises(ValueError, match="finetune_freeze_bn"):
        tiny(finetune_freeze_bn="all")


def test_reconstruction_and_intermediate_losses_on_known_inputs(batch):
    model = tiny()
    b = model.prepare_batch(batch)
    image, mask = b["image"], b["mask"]
    out = {
        "output": (image + 0.1).clamp(max=10),
        "projected_image": image.clone(),
        "projected_edge_logits": torch.zeros_like(mask),
    }
    terms = model.generator_losses(b, out)
    hole_ratio = float(mask.mean())
    # [-1, 1] space: a 0.1 offset is 0.2; plain means over all pixels
    assert terms["hole"].item() == pytest.approx(0.2 * hole_ratio, rel=1e-5)
    assert terms["valid"].item() == pytest.approx(0.2 * (1 - hole_ratio), rel=1e-5)
    assert terms["intermediate"].item() == pytest.approx(math.log(2), rel=1e-5)  # BCE(0.5, e)
    assert set(terms) == {"hole", "valid", "adversarial", "intermediate"}  # no VGG terms


def test_adversarial_term_and_discriminator_loss_values(batch):
    """L_adv = BCE(D(O), 1) + BCE(edge_detector(O), Canny(Y)); D loss = BCE(D(Y), 1) +
    BCE(D(O), 0) + BCE(edge(Y), Canny) + BCE(edge(O), Canny): recomputed by hand from copies of
    the discriminator taken when each term starts (train mode: BatchNorm batch statistics and
    one spectral-norm power iteration per forward, as in the step)."""
    import copy

    model = tiny(stage="train")
    seen = {}
    orig_adv, orig_step, orig_losses = (
        model.generator_adversarial,
        model.discriminator_step,
        model.generator_losses,
    )

    def adv_spy(name, fake, real_out=None):
        seen["g_disc"] = copy.deepcopy(model.discriminator)
        return orig_adv(name, fake, real_out)

    def step_spy(name, real, fake, **kwargs):
        seen["d_disc"] = copy.deepcopy(model.discriminator)
        loss, real_out = orig_step(name, real, fake, **kwargs)
        seen["d_loss"] = float(loss)
        return loss, real_out

    def losses_spy(b, out):
        seen["batch"], seen["output"] = b, out["output"].detach().clone()
        terms = orig_losses(b, out)
        seen["adversarial"] = float(terms["adversarial"])
        return terms

    model.generator_adversarial = adv_spy
    model.discriminator_step = step_spy
    model.generator_losses = losses_spy
    fit(model, batch, 1)
    b, output = seen["batch"], seen["output"]
    image, gray, edge = b["image"], b["gray"], b["edge"]

    def bce(logits, target):
        if isinstance(target, float):
            target = torch.full_like(logits, target)
        return F.binary_cross_entropy_with_logits(logits, target)

    with torch.no_grad():
        logits, edge_logits = seen["g_disc"].train()(output, gray)
        d = seen["d_disc"].train()
        real, real_edge = d(image, gray, edge)
        fake, fake_edge = d(output, gray)
    adversarial = bce(logits, 1.0) + bce(edge_logits, edge)
    assert seen["adversarial"] == pytest.approx(float(adversarial), rel=1e-4)
    expected = bce(real, 1.0) + bce(fake, 0.0) + bce(real_edge, edge) + bce(fake_edge, edge)
    assert seen["d_loss"] == pytest.approx(float(expected), rel=1e-4)


def test_vgg16_backbone_is_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(MissingWeightsError, match="vgg16-397923af.pth"):
        VGGFeatures("vgg16", ["pool1", "pool2", "pool3"], "imagenet")
    model = tiny(perceptual_backbone="random")
    extractor = model.pconv_loss.extractor
    feats = extractor(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats.values()] == [
        (64, 32, 32),
        (128, 16, 16),
        (256, 8, 8),
    ]
    assert not any(p.requires_grad for p in extractor.parameters())
    assert not any(k.startswith("_vgg") for k in model.state_dict())
    assert tiny().pconv_loss.extractor is None  # VGG terms off: nothing is built


def test_generator_step_first_and_its_loss_never_reaches_the_discriminator(batch):
    model = tiny(stage="train")  # the paper's first stage: D at 0.1x the generator's 2e-4
    calls = []
    orig = model.optimize

    def spy(losses, names, terms=None):
        before = [
            None if p.grad is None else p.grad.clone() for p in model.discriminator.parameters()
        ]
        result = orig(losses, names, terms)
        if names == "generator":  # G's backward left every D gradient as it was
            after = [p.grad for p in model.discriminator.parameters()]
            assert all(
                (a is None and b is None) or torch.equal(a, b) for a, b in zip(before, after)
            )
        calls.append(names)
        return result

    model.optimize = spy
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    fit(model, batch, 2)
    assert calls == ["generator", "discriminator"] * 2
    assert any(not torch.equal(a, p) for a, p in zip(d_before, model.discriminator.parameters()))
    assert model.optimizers()[1].param_groups[0]["lr"] == pytest.approx(2e-5)


def test_finetune_freezes_generator_batch_norms_and_starts_fresh_optimizers(batch):
    model = tiny(
        schedule=[
            {"stage": "train", "batches": 1, "lr": 2e-4},
            {"stage": "finetune", "batches": 2, "lr": 5e-5},
        ]
    )
    assert model.schedule_batches() == 3
    bns = model.frozen_batch_norms()
    assert len(bns) == sum(isinstance(m, nn.BatchNorm2d) for m in model.generator.modules())
    stats = {}
    orig = model.training_batch

    def spy(b):
        stats[model.batches_seen] = (model.current_stage(), bns[3].running_mean.clone())
        return orig(b)

    model.training_batch = spy
    fit(model, batch, 3)
    assert [stats[i][0] for i in range(3)] == ["train", "finetune", "finetune"]
    assert not torch.equal(stats[0][1], stats[1][1])  # the train batch updated the stats
    assert torch.equal(stats[1][1], stats[2][1])  # fine-tune batches did not
    assert torch.equal(stats[2][1], bns[3].running_mean)
    g_opt, d_opt = model.optimizers()
    assert g_opt.param_groups[0]["lr"] == pytest.approx(5e-5)
    assert d_opt.param_groups[0]["lr"] == pytest.approx(5e-6)
    # new optimizers at the fine-tune: Adam counted 2 steps (the fine-tune's), not 3
    for opt in (g_opt, d_opt):
        steps = {float(state["step"]) for state in opt.optimizer.state.values()}
        assert steps == {2.0}
    encoder_only = tiny(finetune_freeze_bn="encoder").frozen_batch_norms()
    assert 0 < len(encoder_only) < len(bns)


def test_finetune_alone_needs_a_trained_generator(batch):
    from inpaintzoo.methods.base import StageRequirementError

    with pytest.raises(StageRequirementError, match="finetune .* needs a trained generator"):
        fit(tiny(stage="finetune"), batch, 1)


@pytest.mark.slow
def test_full_size_forward_backward_at_smallest_size():
    torch.manual_seed(0)
    model = zoo.create_model("ctsdg", variant="full", perceptual_backbone="off")
    b = model.prepare_batch(embedded_batch(n=2, size=128, seed=0))
    mask = b["mask"]
    out = model.generator(b["image"] * (1 - mask), b["edge"] * (1 - mask), b["gray"], mask)
    assert out["output"].shape == (2, 3, 128, 128)
    terms = model.generator_losses(b, out)
    sum(terms.values()).backward()
    assert all(torch.isfinite(v) for v in terms.values())
    assert model.generator.texture_encoder.levels[0].conv.weight.grad.abs().sum() > 0
