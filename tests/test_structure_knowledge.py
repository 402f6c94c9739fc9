"""Structure knowledge (Yang, Qi, Shi, AAAI 2020), its own facts: networks against
specs/structure_knowledge.md §3-§5 (full size on the meta device) and the LightningModule (the
loss terms, the official VGG magnitude, Canny sigma, test-mode inputs). Generic behaviour is in
tests/test_contract.py."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from helpers import embedded_batch, fit
from inpaintzoo import zoo
from inpaintzoo.blocks import has_spectral_norm
from inpaintzoo.nets.structure_knowledge import (
    OFFICIAL_PARAM_COUNTS,
    StructureKnowledgeDiscriminator,
    StructureKnowledgeGenerator,
    build_structure_knowledge_nets,
)

# ----------------------------------------------------------------------------------------------
# Expected layer table written from the spec's §3/§4 tables (not from the modules under test).
# Row: (type, in, out, kernel, stride, dilation).
Row = tuple[str, int, int, int, int, int]


def _spec_attention(c: int) -> list[Row]:
    r = c // 16
    return [
        ("conv", c, c, 4, 2, 1),  # d: gen_conv k4 s2
        ("conv", c, r, 1, 1, 1),  # f (keys, pooled)
        ("conv", c, r, 1, 1, 1),  # g (queries)
        ("conv", c, r, 1, 1, 1),  # h (values, pooled)
        ("tconv", r, c, 4, 2, 1),  # gen_deconv back to C
    ]


def _spec_generator() -> list[Row]:
    rows: list[Row] = [
        ("conv", 11, 64, 7, 1, 1),
        ("conv", 64, 128, 4, 2, 1),
        ("conv", 128, 256, 4, 2, 1),
    ]
    rows += [("conv", 256, 256, 3, 1, 2), ("conv", 256, 256, 3, 1, 1)] * 8
    for c, up in ((256, 128), (128, 64), (64, None)):
        rows += _spec_attention(c)
        rows += [("conv", c, c, 5, 1, 1), ("conv", c, 6, 1, 1, 1), ("conv", c, 3, 1, 1, 1)]
        if up is not None:
            rows.append(("tconv", 2 * c, up, 4, 2, 1))  # structure embedding: cat(x, x_s)
    return rows


def _fingerprint(net: nn.Module) -> list[Row]:
    rows = []
    for name, m in net.named_modules():
        if "parametrizations" in name or not isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            continue
        kind = "tconv" if isinstance(m, nn.ConvTranspose2d) else "conv"
        rows.append(
            (kind, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.dilation[0])
        )
    return rows


@pytest.fixture(scope="module")
def full_nets():
    with torch.device("meta"):
        return build_structure_knowledge_nets("full")


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_full_parameter_counts_match_the_spec(full_nets):
    for name, count in OFFICIAL_PARAM_COUNTS.items():
        assert _count(full_nets[name]) == count, name
    g = full_nets["generator"]
    # spec §5 breakdown
    assert _count(g.encoder) == 691_200
    assert _count(g.middle) == 9_449_472
    assert [_count(s.attention) for s in g.decoder] == [1_127_985, 282_393, 70_797]


def test_generator_layer_fingerprint(full_nets):
    g = full_nets["generator"]
    assert _fingerprint(g) == _spec_generator()
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert all(m.bias is not None for m in convs)  # every conv has a bias
    # instance norm with learnable scale/shift after every gen_conv / gen_deconv (heads too)
    norms = [m for m in g.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 + 16 + 6 + 6 + 5
    assert all(n.affine and not n.track_running_stats and n.eps == 1e-6 for n in norms)
    # reflect padding int(d * (k - 1) / 2) before each non-1x1 conv; 1x1 convs unpadded
    pads = [m.padding[0] for m in g.modules() if isinstance(m, nn.ReflectionPad2d)]
    assert pads[:3] == [3, 1, 1] and pads[3:5] == [2, 1]
    assert not any(isinstance(m, nn.ZeroPad2d) for m in g.modules())
    heads = [s.image_head.act for s in g.decoder]
    assert all(isinstance(h, nn.Tanh) for h in heads)
    assert all(isinstance(s.gradient_head.act, nn.Identity) for s in g.decoder)


def test_discriminator_layer_fingerprint(full_nets):
    d = full_nets["discriminator"]
    rows = [
        (m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0],
         m.bias is not None, has_spectral_norm(m))
        for name, m in d.named_modules()
        if isinstance(m, nn.Conv2d) and "parametrizations" not in name
    ]  # fmt: skip
    assert rows == [
        (3, 64, 4, 2, 0, True, True),
        (64, 128, 4, 2, 0, True, True),
        (128, 256, 4, 2, 0, True, True),
        (256, 512, 4, 1, 0, True, True),
        (512, 1, 4, 1, 0, True, True),
    ]
    assert sum(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in d.modules()) == 4


def test_intermediate_shapes_at_256_on_meta(full_nets):
    g, d = full_nets["generator"], full_nets["discriminator"]
    seen: dict[str, tuple] = {}
    hooks = [
        g.encoder.register_forward_hook(lambda m, i, o: seen.__setitem__("encoder", o.shape)),
        g.middle.register_forward_hook(lambda m, i, o: seen.__setitem__("middle", o.shape)),
    ]
    for i, stage in enumerate(g.decoder):
        stage.attention.keep_attention = True
        hooks.append(
            stage.structure.register_forward_hook(
                lambda m, inp, o, i=i: seen.__setitem__(f"feature{i}", o.shape)
            )
        )
    x = torch.empty(2, 11, 256, 256, device="meta")
    out = g.forward_input(x)
    for h in hooks:
        h.remove()
    assert seen["encoder"] == seen["middle"] == (2, 256, 64, 64)
    assert [seen[f"feature{i}"] for i in range(3)] == [
        (2, 256, 64, 64),
        (2, 128, 128, 128),
        (2, 64, 256, 256),
    ]
    # attention maps: queries at half, keys at quarter of each decoder scale (spec §9)
    att = [tuple(s.attention.last_attention.shape) for s in g.decoder]
    assert att == [(2, 32 * 32, 16 * 16), (2, 64 * 64, 32 * 32), (2, 128 * 128, 64 * 64)]
    assert [tuple(t.shape) for t in out["images"]] == [(2, 3, s, s) for s in (64, 128, 256)]
    assert [tuple(t.shape) for t in out["gradients"]] == [(2, 6, s, s) for s in (64, 128, 256)]
    assert tuple(d(torch.empty(2, 3, 256, 256, device="meta")).shape) == (2, 1, 32, 32)
    for s in g.decoder:
        s.attention.keep_attention = False


def test_generator_input_is_the_official_eleven_channels():
    image = torch.rand(1, 3, 16, 16)
    edge = (torch.rand(1, 1, 16, 16) > 0.7).float()
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:10, 4:10] = 1
    grad = torch.randn(1, 6, 16, 16)
    x = StructureKnowledgeGenerator.build_input(image, edge, mask, grad)
    known = 1 - mask
    torch.testing.assert_close(x[:, :3], (image * 2 - 1) * known)
    torch.testing.assert_close(x[:, 3:4], (1 - edge) * known + mask)  # 0 = edge, hole = 1
    torch.testing.assert_close(x[:, 4:5], mask)
    torch.testing.assert_close(x[:, 5:], grad * known)
    with pytest.raises(ValueError, match="gradient must have shape"):
        StructureKnowledgeGenerator.build_input(image, edge, mask, grad[:, :3])


def test_size_checks_and_tiny_shapes():
    torch.manual_seed(0)
    nets = build_structure_knowledge_nets("tiny")
    g, d = nets["generator"], nets["discriminator"]
    with pytest.raises(ValueError, match="divisible by 16"):
        g.forward_input(torch.rand(1, 11, 40, 48))
    with pytest.raises(ValueError, match="expects"):
        g.forward_input(torch.rand(1, 9, 64, 64))
    with pytest.raises(ValueError, match="unknown structure_knowledge override"):
        build_structure_knowledge_nets("tiny", width=3)
    out = g.forward_input(torch.rand(2, 11, 64, 48))
    assert [tuple(t.shape[-2:]) for t in out["images"]] == [(16, 12), (32, 24), (64, 48)]
    assert all(t.abs().max() <= 1 for t in out["images"])  # tanh heads
    # TF 'SAME' padding: ceil(H / 8) patches, also for sizes not divisible by 8
    assert d(torch.rand(1, 3, 64, 64)).shape == (1, 1, 8, 8)
    assert d(torch.rand(1, 3, 36, 44)).shape == (1, 1, 5, 6)
    assert isinstance(d, StructureKnowledgeDiscriminator)


# ----------------------------------------------------------------------------- the method


def tiny(**kwargs):
    kwargs.setdefault("perceptual_backbone", "off")
    kwargs.setdefault("canny_sigma", 1.0)
    return zoo.create_model("structure_knowledge", variant="tiny", **kwargs)


@pytest.fixture(scope="module")
def batch():
    return embedded_batch(n=4, size=64, seed=3)


def test_every_loss_term_takes_part_and_both_networks_train(batch):
    """lr 1e-3 and width 8 keep this wiring test short (the recipe's 1e-5 is the contract
    test's learning check)."""
    torch.manual_seed(0)
    model = tiny(lr=1e-3, base_channels=8, num_residual_blocks=1)
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    seen = {}
    orig = model.training_batch

    def spy(b):
        logs = orig(b)
        seen.update({k: float(v.detach()) for k, v in logs.items()})
        return logs

    model.training_batch = spy
    fit(model, batch, 2)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))
    for key in ("l1_hole", "l1_valid", "structure", "adversarial", "g", "d", "structure_edge_l1_0"):
        assert key in seen and seen[key] == seen[key], key  # present and not NaN
    assert "perceptual" not in seen and "style" not in seen  # switched off: no VGG built
    assert model._vgg_holder == []


def test_inference_inputs_come_from_the_known_pixels_only(batch):
    model = tiny().eval()
    image, mask = batch["image"], batch["mask"]
    # test-mode inputs: no edge in the hole, gradient input zero on the hole's 1-px ring
    edge, grad = model.inference_inputs(image * (1 - mask), mask)
    assert edge[mask > 0].sum() == 0
    ring = torch.nn.functional.max_pool2d(mask, 3, 1, 1) > 0
    assert grad[ring.expand_as(grad)].abs().sum() == 0
    out = model.inpaint(image, mask)
    assert set(out) >= {"output", "composite", "edge", "gradient"}
    assert out["gradient"].shape == (4, 6, 64, 64)


def test_canny_sigma_is_the_official_one_and_scales_with_the_image_size():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from conftest import REPO_ROOT

    with initialize_config_dir(config_dir=str(REPO_ROOT / "conf"), version_base="1.3"):
        recipe = compose("train", ["model=structure_knowledge", "run_dir=/tmp/x"])
        small = compose("train", ["model=structure_knowledge", "experiment=celeba64", "run_dir=/x"])
    assert recipe.model.canny_sigma == 1.5  # the official SIGMA at 256 px
    options = OmegaConf.to_container(small.model, resolve=True)
    options.pop("name")
    with torch.device("meta"):
        model = zoo.create_model("structure_knowledge", **options)
    assert model.canny_sigma == pytest.approx(0.75)  # 64 px: scaled by structure.scale 0.5


def test_vgg_terms_are_scaled_to_the_official_magnitude():
    """The official VGG19 sees the [-1, 1] image, 2/255 of the 0-255 input its weights expect.
    With a positively homogeneous VGG (random init, biases zeroed) the official formulation on
    inputs scaled by 2/255 equals ours on the properly scaled inputs times the computed factors
    (2/255)^2 for the content MSE and (2/255)^4 for the squared Gram difference."""
    from inpaintzoo.losses import VGG19Features
    from inpaintzoo.methods.structure_knowledge import (
        CONTENT_SCALE,
        OFFICIAL_VGG_INPUT_SCALE,
        STYLE_SCALE,
        VGG_LAYER_WEIGHTS,
        ContentStyleLoss,
    )

    assert CONTENT_SCALE == pytest.approx((2 / 255) ** 2)
    assert STYLE_SCALE == pytest.approx((2 / 255) ** 4)
    torch.manual_seed(0)
    extractor = VGG19Features(list(VGG_LAYER_WEIGHTS), "random", normalize_input=False)
    for m in extractor.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.bias)
    ours = ContentStyleLoss(0.1, 250.0, extractor=extractor)
    official = ContentStyleLoss(0.1, 250.0, extractor=extractor, content_scale=1, style_scale=1)
    pred, target = torch.randn(2, 3, 32, 32).double(), torch.randn(2, 3, 32, 32).double()
    extractor.double()
    s = OFFICIAL_VGG_INPUT_SCALE
    a, b = ours([pred], target), official([s * pred], s * target)
    assert float(a["content"]) == pytest.approx(float(b["content"]), rel=1e-4)
    assert float(a["style"]) == pytest.approx(float(b["style"]), rel=1e-4)
    assert float(a["content"]) < 1e-3 * float(official([pred], target)["content"])
    # the default extractor gets what torchvision's weights expect: ImageNet-normalised [0, 1]
    assert ContentStyleLoss(0.1, 250.0, "random").extractor.normalize_input


def test_run_notes_vgg_rule_and_schedule():
    model = tiny()
    notes = " ".join(model.run_notes())
    assert "VGG-based losses" in notes and "tiny variant" in notes
    assert model.vgg_loss is None
    # with the VGG losses on, the ImageNet file is looked up lazily, never downloaded
    from inpaintzoo.losses import MissingWeightsError, vgg19_weights_path

    full_recipe = tiny(perceptual_backbone="imagenet")
    if not vgg19_weights_path().is_file():
        with pytest.raises(MissingWeightsError, match="vgg19"):
            full_recipe.vgg_loss  # noqa: B018
    scheduled = tiny(lr=1e-4, schedule=[{"batches": 3, "lr": 1e-4}, {"batches": 2, "lr": 1e-5}])
    assert scheduled.schedule_batches() == 5
    scheduled.batches_seen = 4
    assert scheduled.stage_lr_factor() == pytest.approx(0.1)
    assert "lr 1e-05" in " ".join(scheduled.run_notes())
    with pytest.raises(ValueError, match="unknown keys"):
        tiny(schedule=[{"batches": 3, "stage": 1, "lr": 1e-4}])
    with pytest.raises(ValueError, match="perceptual_backbone"):
        tiny(perceptual_backbone="imagenet21k")


def test_training_step_with_random_vgg_backbone_uses_every_term(batch, caplog):
    """The full loss (content + style on a randomly initialised VGG19, timing-only) runs."""
    model = tiny(perceptual_backbone="random")
    seen = {}
    orig = model.training_batch
    model.training_batch = lambda b: seen.update(orig(b)) or seen
    small = {k: v[:1, :, :32, :32] for k, v in batch.items()}
    with caplog.at_level(logging.WARNING):
        fit(model, small, 1)
    assert float(seen["perceptual"]) > 0 and float(seen["style"]) > 0
    assert "randomly initialised" in " ".join(model.run_notes())
    assert not any(k.startswith("_vgg") for k in model.state_dict())


@pytest.mark.slow
def test_full_size_forward_backward_at_the_smallest_legal_size():
    torch.manual_seed(0)
    model = zoo.create_model("structure_knowledge", perceptual_backbone="off")
    assert model.num_parameters() == 15_089_000
    image = torch.rand(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    edge, grad = model.inference_inputs(image * (1 - mask), mask)
    out = model.generator(image, edge, mask, grad)
    loss = sum(t.mean() for t in out["images"] + out["gradients"])
    loss = loss + model.discriminator(out["images"][-1]).mean()
    loss.backward()
    assert all(p.grad is not None for p in model.generator.parameters() if p.requires_grad)
    assert out["images"][-1].shape == (2, 3, 16, 16)
