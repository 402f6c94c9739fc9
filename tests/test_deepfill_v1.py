"""DeepFill v1's own facts: networks against specs/deepfill_v1.md §3, §5, §8 (component counts,
layer fingerprints written from the spec tables, shapes at 256 px on the meta device), the
spatially discounted L1 and the other loss values on hand-computed inputs, the masked gradient
penalty, 5 critic steps per generator step and the local patch. The registry-wide contract
tests (tests/test_contract.py) cover counts, CLI, learning, checkpoints, predictor and export."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers import embedded_batch, fit
from inpaintzoo import zoo
from inpaintzoo.blocks import ContextualAttention, DeepFillCritic, GatedConv2d
from inpaintzoo.losses import AdversarialLoss, gradient_penalty
from inpaintzoo.losses.spatial_discount import spatial_discounting_mask, spatially_discounted_l1
from inpaintzoo.nets.deepfill_v1 import OFFICIAL_PARAM_COUNTS, build_deepfill_v1_nets

# ----------------------------------------------------------------------------- spec tables
# A row: (name, in, conv out, kernel, stride, dilation, activation, nearest x2 first), written
# from specs/deepfill_v1.md §3 (cnum 32), not from the modules under test.
Row = tuple[str, int, int, int, int, int, str, bool]
ATROUS = [(2, 7), (4, 8), (8, 9), (16, 10)]

SPEC_COARSE: list[Row] = [
    ("conv1", 5, 32, 5, 1, 1, "ELU", False),
    ("conv2_downsample", 32, 64, 3, 2, 1, "ELU", False),
    ("conv3", 64, 64, 3, 1, 1, "ELU", False),
    ("conv4_downsample", 64, 128, 3, 2, 1, "ELU", False),
    ("conv5", 128, 128, 3, 1, 1, "ELU", False),
    ("conv6", 128, 128, 3, 1, 1, "ELU", False),
    *[(f"conv{i}_atrous", 128, 128, 3, 1, d, "ELU", False) for d, i in ATROUS],
    ("conv11", 128, 128, 3, 1, 1, "ELU", False),
    ("conv12", 128, 128, 3, 1, 1, "ELU", False),
    ("conv13_upsample", 128, 64, 3, 1, 1, "ELU", True),
    ("conv14", 64, 64, 3, 1, 1, "ELU", False),
    ("conv15_upsample", 64, 32, 3, 1, 1, "ELU", True),
    ("conv16", 32, 16, 3, 1, 1, "ELU", False),
    ("conv17", 16, 3, 3, 1, 1, "Identity", False),
]
SPEC_XCONV: list[Row] = [
    ("xconv1", 5, 32, 5, 1, 1, "ELU", False),
    ("xconv2_downsample", 32, 32, 3, 2, 1, "ELU", False),
    ("xconv3", 32, 64, 3, 1, 1, "ELU", False),
    ("xconv4_downsample", 64, 64, 3, 2, 1, "ELU", False),
    ("xconv5", 64, 128, 3, 1, 1, "ELU", False),
    ("xconv6", 128, 128, 3, 1, 1, "ELU", False),
    *[(f"xconv{i}_atrous", 128, 128, 3, 1, d, "ELU", False) for d, i in ATROUS],
]
SPEC_PMCONV: list[Row] = [
    ("pmconv1", 5, 32, 5, 1, 1, "ELU", False),
    ("pmconv2_downsample", 32, 32, 3, 2, 1, "ELU", False),
    ("pmconv3", 32, 64, 3, 1, 1, "ELU", False),
    ("pmconv4_downsample", 64, 128, 3, 2, 1, "ELU", False),
    ("pmconv5", 128, 128, 3, 1, 1, "ELU", False),
    ("pmconv6", 128, 128, 3, 1, 1, "ReLU", False),
]
SPEC_PM_POST: list[Row] = [
    ("pmconv9", 128, 128, 3, 1, 1, "ELU", False),
    ("pmconv10", 128, 128, 3, 1, 1, "ELU", False),
]
SPEC_ALLCONV: list[Row] = [
    ("allconv11", 256, 128, 3, 1, 1, "ELU", False),
    ("allconv12", 128, 128, 3, 1, 1, "ELU", False),
    ("allconv13_upsample", 128, 64, 3, 1, 1, "ELU", True),
    ("allconv14", 64, 64, 3, 1, 1, "ELU", False),
    ("allconv15_upsample", 64, 32, 3, 1, 1, "ELU", True),
    ("allconv16", 32, 16, 3, 1, 1, "ELU", False),
    ("allconv17", 16, 3, 3, 1, 1, "Identity", False),
]


def stage_fingerprint(stage: nn.Sequential) -> list[tuple]:
    """(name, in, conv out, k, stride, dilation, activation, upsampled) of each gen_conv, with
    checks of the padding ('same': dilation * (k - 1) / 2), the bias and the conv kind."""
    rows = []
    for name, layer in stage.named_children():
        upsampled = isinstance(layer, nn.Sequential)
        if upsampled:
            assert isinstance(layer.up, nn.Upsample) and layer.up.mode == "nearest"
            assert layer.up.scale_factor == 2
            layer = layer.conv
        conv = layer.conv
        gated = isinstance(conv, GatedConv2d)
        act = conv.act if gated else layer.act
        if gated:
            conv = conv.conv
        k, d = conv.kernel_size[0], conv.dilation[0]
        assert conv.padding[0] == d * (k - 1) // 2 and conv.bias is not None
        rows.append(
            (name, conv.in_channels, conv.out_channels, k, conv.stride[0], d)
            + (type(act).__name__, upsampled)
            + ((gated,) if gated else ())
        )
    return rows


def count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.fixture(scope="module")
def full_nets():
    with torch.device("meta"):
        return build_deepfill_v1_nets("full")


# ----------------------------------------------------------------------------- nets (meta)
def test_official_counts_are_the_spec_numbers(full_nets):
    assert OFFICIAL_PARAM_COUNTS == {
        "generator": 3_601_542,
        "local_critic": 4_339_329,
        "global_critic": 2_733_441,
    }
    g = full_nets["generator"]
    assert count(g.coarse) == 1_448_227 and count(g.refine_conv) == 880_480
    assert count(g.refine_attention, g.refine_attention_post) == 695_968
    assert count(g.merge) == 576_867 and count(g.attention) == 0
    local, glob = full_nets["local_critic"], full_nets["global_critic"]
    assert count(local.convs) == 4_306_560 and count(local.fc) == 32_769
    assert count(glob.convs) == 2_667_904 and count(glob.fc) == 65_537


def test_generator_layer_fingerprint(full_nets):
    g = full_nets["generator"]
    assert stage_fingerprint(g.coarse) == SPEC_COARSE
    assert stage_fingerprint(g.refine_conv) == SPEC_XCONV
    assert stage_fingerprint(g.refine_attention) == SPEC_PMCONV
    assert stage_fingerprint(g.refine_attention_post) == SPEC_PM_POST
    assert stage_fingerprint(g.merge) == SPEC_ALLCONV
    ca = g.attention
    assert isinstance(ca, ContextualAttention)
    assert (ca.kernel_size, ca.rate, ca.softmax_scale, ca.fuse, ca.fuse_kernel) == (
        3,
        2,
        10,
        True,
        3,
    )
    assert g.output == "clip" and g.refine_with_mask and not g.gated


@pytest.mark.parametrize(
    ("name", "widths", "size"),
    [("local_critic", [64, 128, 256, 512], 128), ("global_critic", [64, 128, 256, 256], 256)],
)
def test_critic_fingerprints(full_nets, name, widths, size):
    critic = full_nets[name]
    assert isinstance(critic, DeepFillCritic) and critic.input_size == size
    chans = [3, *widths]
    convs = [m for m in critic.convs.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == list(zip(chans, chans[1:]))
    for c in convs:  # dis_conv: k5 s2 'same', bias, no normalisation, no SN
        assert (c.kernel_size, c.stride, c.padding) == ((5, 5), (2, 2), (2, 2))
        assert c.bias is not None and not hasattr(c, "parametrizations")
    acts = [m for m in critic.convs.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 4 and all(a.negative_slope == 0.2 for a in acts)
    assert not any(isinstance(m, nn.modules.batchnorm._NormBase) for m in critic.modules())
    side = size // 16
    assert critic.fc.in_features == side * side * widths[-1] and critic.fc.out_features == 1


def test_intermediate_shapes_at_256(full_nets):
    g = full_nets["generator"]
    shapes = {}
    hooks = [
        getattr(g, n).register_forward_hook(
            lambda m, a, o, n=n: shapes.update({n: (tuple(a[0].shape[1:]), tuple(o.shape[1:]))})
        )
        for n in ("coarse", "refine_conv", "refine_attention", "attention", "merge")
    ]
    with torch.device("meta"):
        coarse, output = g(torch.empty(2, 3, 256, 256), torch.zeros(2, 1, 256, 256))
        local = full_nets["local_critic"].convs(torch.empty(2, 3, 128, 128))
        glob = full_nets["global_critic"].convs(torch.empty(2, 3, 256, 256))
    for h in hooks:
        h.remove()
    assert shapes["coarse"] == ((5, 256, 256), (3, 256, 256))  # cat(x_in, ones, mask)
    assert shapes["refine_conv"] == ((5, 256, 256), (128, 64, 64))
    assert shapes["refine_attention"] == ((5, 256, 256), (128, 64, 64))
    assert shapes["attention"] == ((128, 64, 64), (128, 64, 64))
    assert shapes["merge"] == ((256, 64, 64), (3, 256, 256))
    assert coarse.shape == output.shape == (2, 3, 256, 256)
    assert local.shape == (2, 512, 8, 8) and glob.shape == (2, 256, 16, 16)


def test_generator_outputs_are_clipped_and_ignore_the_hole():
    torch.manual_seed(0)
    g = build_deepfill_v1_nets("tiny")["generator"].eval()
    with torch.no_grad():  # a large last bias drives the clip
        g.merge.allconv17.conv.bias.fill_(5.0)
    x, m = torch.rand(2, 3, 32, 32), torch.zeros(2, 1, 32, 32)
    m[..., 8:24, 8:24] = 1
    with torch.no_grad():
        coarse, out = g(x, m)
        _, out2 = g(torch.where(m > 0, torch.rand_like(x), x), m)
    assert out.max() == 1.0 and 0 <= coarse.min() and coarse.max() <= 1
    torch.testing.assert_close(out, out2)
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.rand(1, 3, 30, 32), torch.zeros(1, 1, 30, 32))


# ----------------------------------------------------------------------------- losses
def test_spatial_discounting_map_is_the_official_formula():
    # max(gamma^min(i, H-i), gamma^min(j, W-j)) at gamma 0.5 on 4 x 4, written out
    expected = torch.tensor(
        [[1, 1, 1, 1], [1, 0.5, 0.5, 0.5], [1, 0.5, 0.25, 0.5], [1, 0.5, 0.5, 0.5]]
    )
    torch.testing.assert_close(spatial_discounting_mask(4, 4, 0.5)[0, 0], expected)
    w = spatial_discounting_mask(128, 128, 0.99)
    assert w.shape == (1, 1, 128, 128) and w[0, 0, 64, 64] == pytest.approx(0.99**64)
    assert spatial_discounting_mask(128, 128, 0.9)[0, 0, 64, 64] == pytest.approx(0.9**64)
    diff = torch.full((1, 3, 4, 4), 2.0)
    assert float(spatially_discounted_l1(diff, torch.zeros_like(diff), expected)) == pytest.approx(
        2.0 * float(expected.mean())
    )
    with pytest.raises(ValueError, match="gamma"):
        spatial_discounting_mask(4, 4, 1.5)


def tiny(**kwargs):
    kwargs.setdefault("perceptual_backbone", "off")
    return zoo.create_model("deepfill_v1", variant="tiny", **kwargs)


@pytest.fixture(scope="module")
def batch():
    return embedded_batch(n=4, size=64, seed=3)


def test_reconstruction_terms_on_known_inputs(batch):
    model = tiny()
    image, mask = batch["image"], batch["mask"]
    coarse, output = image + 0.1, image + 0.05  # [-1, 1] differences: 0.2 and 0.1
    terms = model.reconstruction_terms(image, mask, coarse, output)
    p = model.patch_size
    assert p == 32 and model.discount_gamma == 0.99
    mean_w = sum(
        max(0.99 ** min(i, p - i), 0.99 ** min(j, p - j)) for i in range(p) for j in range(p)
    ) / (p * p)
    # l1 = 1.2 mean(0.2 W) + mean(0.1 W); ae = (1.2 * 0.2 + 0.1) over the known region / ratio
    assert float(terms["l1"]) == pytest.approx((1.2 * 0.2 + 0.1) * mean_w, rel=1e-5)
    assert float(terms["ae"]) == pytest.approx(1.2 * 0.2 + 0.1, rel=1e-5)
    released = tiny(discount_gamma=0.9).reconstruction_terms(image, mask, coarse, output)
    assert float(released["l1"]) < float(terms["l1"])  # the release's stronger discount


def test_masked_gradient_penalty_on_a_hand_computed_case():
    """A linear critic D(x) = c * sum(x) has gradient c everywhere: with the mask the norm is
    c sqrt(3 n_hole), so the penalty is (c sqrt(3 n_hole) - 1)^2 whatever the interpolation."""
    c = 0.05
    real, fake = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, :, :2, :3] = 1  # 6 hole pixels
    mask[1, :, 4:, :] = 1  # 32 hole pixels

    def critic(x):
        return c * x.sum(dim=(1, 2, 3))

    expected = ((c * math.sqrt(3 * 6) - 1) ** 2 + (c * math.sqrt(3 * 32) - 1) ** 2) / 2
    assert float(gradient_penalty(critic, real, fake, mask)) == pytest.approx(expected, rel=1e-5)
    loss = AdversarialLoss("wgan_gp", gp_weight=10.0)
    d = loss.discriminator_loss(critic(real), critic(fake), critic, real, fake, mask)
    wgan = float(critic(fake).mean() - critic(real).mean())
    assert float(d) == pytest.approx(wgan + 10 * expected, rel=1e-5)


# ----------------------------------------------------------------------------- training step
def test_module_attributes_and_options():
    model = tiny()
    assert model.method_name == "deepfill_v1" and model.inference_nets == ("generator",)
    assert model.lr == 1e-4 and model.betas == (0.5, 0.9) and model.d2g_lr == 1.0
    assert model.gan_loss == "wgan_gp" and model.adversarial_loss.gp_weight == 10.0
    assert model.weights == {"l1": 1.2, "ae": 1.2, "adversarial": 0.001}
    assert (model.critic_steps, model.coarse_l1_alpha, model.global_wgan_alpha) == (5, 1.2, 1.0)
    assert model.size_multiple == 8 and model.value_range == "[-1,1]"
    assert (model.train_size, model.patch_size) == (64, 32)
    assert tiny(gp_weight=5.0).adversarial_loss.gp_weight == 5.0
    with pytest.raises(ValueError, match="discount_gamma"):
        tiny(discount_gamma=0.0)
    with pytest.raises(ValueError, match="critic_steps"):
        tiny(critic_steps=0)
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny(train_size=48)


def test_five_critic_steps_then_one_generator_step_with_masked_penalties(batch):
    model = tiny()
    calls, masks = [], []
    orig_optimize, orig_step = model.optimize, model.discriminator_step

    def optimize_spy(losses, names, terms=None):
        calls.append(names)
        return orig_optimize(losses, names, terms)

    def step_spy(name, real, fake, **kwargs):
        masks.append((name, real.shape[-1], kwargs["mask"]))
        return orig_step(name, real, fake, **kwargs)

    model.optimize, model.discriminator_step = optimize_spy, step_spy
    critics_before = [p.detach().clone() for p in model.local_critic.parameters()]
    fit(model, batch, 1)
    assert calls == ["local_critic", "global_critic"] * 5 + ["generator"]
    local_masks = [m for n, size, m in masks if n == "local_critic"]
    assert all(size == 32 for n, size, _ in masks if n == "local_critic")
    # the local penalty's mask is the patch of the hole mask, the global one the whole mask
    torch.testing.assert_close(local_masks[0], model.local_patch(batch["mask"], batch["mask"]))
    assert all(torch.equal(m, batch["mask"]) for n, _, m in masks if n == "global_critic")
    assert any(
        not torch.equal(a, p) for a, p in zip(critics_before, model.local_critic.parameters())
    )


def test_local_patch_is_centred_on_the_hole():
    model = tiny()
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 10:20, 30:46] = 1  # centre (14.5, 37.5): patch rows 0..31 (clamped), cols 22..53
    mask[1, :, 50:60, 50:60] = 1  # at the corner: the patch is shifted inside the image
    x = torch.arange(64.0).view(1, 1, 1, 64).expand(2, 1, 64, 64) + 100 * torch.arange(64.0).view(
        1, 1, 64, 1
    )
    patch = model.local_patch(x, mask)
    assert patch.shape == (2, 1, 32, 32)
    assert patch[0, 0, 0, 0] == 0 * 100 + 22 and patch[1, 0, 0, 0] == 32 * 100 + 32
    assert model.local_patch(mask, mask)[0].sum() == mask[0].sum()  # the whole hole is inside


def test_training_at_another_size_names_the_option():
    model = tiny()
    with pytest.raises(ValueError, match="train_size=32"):
        model.training_batch({"image": torch.rand(2, 3, 32, 32), "mask": torch.zeros(2, 1, 32, 32)})


@pytest.mark.slow
def test_full_size_training_batch_at_256():
    """The full networks (official counts) through one training batch at the recipe's 256 px
    (the critics' dense layers fix the size), batch 1, one critic step."""
    torch.manual_seed(0)
    model = zoo.create_model("deepfill_v1", critic_steps=1)
    image = torch.rand(1, 3, 256, 256)
    mask = torch.zeros(1, 1, 256, 256)
    mask[..., 70:180, 60:170] = 1
    before = model.generator.merge.allconv17.conv.weight.detach().clone()
    fit(model, {"image": image, "mask": mask}, 1)
    assert not torch.equal(before, model.generator.merge.allconv17.conv.weight)
    out = model.eval().inpaint(image, mask)
    assert out["output"].shape == (1, 3, 256, 256) and torch.isfinite(out["composite"]).all()
