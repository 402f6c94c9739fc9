"""inpaintzoo.losses: adversarial, L1 variants, feature matching, Gram, VGG19 losses."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch import nn

from inpaintzoo.losses import (
    ADVERSARIAL_KINDS,
    VGG19_LAYER_INDICES,
    AdversarialLoss,
    MissingWeightsError,
    PerceptualLoss,
    StyleLoss,
    VGG19Features,
    VGGLoss,
    feature_matching_loss,
    gram_matrix,
    hole_normalized_l1,
    l1_loss,
    masked_l1,
    vgg19_weights_path,
)


@pytest.fixture
def hub_dir(tmp_path):
    """An empty torch hub dir for the test, restored afterwards."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


@pytest.fixture(scope="module")
def random_vgg():
    """One randomly initialised VGG19 (relu1_1 ... relu5_2) shared by the VGG-loss tests."""
    layers = ["relu1_1", "relu2_1", "relu2_2", "relu3_1", "relu3_4", "relu4_1", "relu4_4"]
    return VGG19Features([*layers, "relu5_1", "relu5_2"], weights="random")


# --------------------------------------------------------------------------- adversarial


def test_adversarial_known_values():
    zero = torch.zeros(2, 1, 3, 3)
    ln2 = math.log(2.0)
    nsgan = AdversarialLoss("nsgan")
    assert nsgan(zero, True).item() == pytest.approx(ln2)
    assert nsgan(zero, False).item() == pytest.approx(ln2)
    x = torch.tensor([2.0, -1.0])
    # BCE with logits: real -> softplus(-x), fake -> softplus(x)
    expected_real = torch.nn.functional.softplus(-x).mean().item()
    assert nsgan(x, True).item() == pytest.approx(expected_real, rel=1e-6)
    assert nsgan(x, True, for_discriminator=False).item() == pytest.approx(expected_real, rel=1e-6)
    # stable where sigmoid + BCE would saturate
    assert math.isfinite(nsgan(torch.tensor([-200.0]), True).item())
    assert nsgan(torch.tensor([-200.0]), True).item() == pytest.approx(200.0)

    lsgan = AdversarialLoss("lsgan")
    assert lsgan(x, True).item() == pytest.approx(((2 - 1) ** 2 + (-1 - 1) ** 2) / 2)
    assert lsgan(x, False).item() == pytest.approx((4 + 1) / 2)
    assert AdversarialLoss("lsgan", real_label=0.9)(torch.tensor([0.9]), True).item() == 0.0

    hinge = AdversarialLoss("hinge")
    assert hinge(x, True).item() == pytest.approx((0 + 2) / 2)  # relu(1-2), relu(1+1)
    assert hinge(x, False).item() == pytest.approx((3 + 0) / 2)  # relu(1+2), relu(1-1)
    assert hinge(x, True, for_discriminator=False).item() == pytest.approx(-0.5)
    assert hinge(x, False, for_discriminator=False).item() == pytest.approx(-0.5)
    # margin satisfied -> zero
    assert hinge(torch.full((4,), 1.5), True).item() == 0.0
    assert hinge(torch.full((4,), -1.5), False).item() == 0.0


def test_adversarial_unknown_kind_lists_kinds():
    with pytest.raises(ValueError) as info:
        AdversarialLoss("wgan-xyz")
    for kind in ADVERSARIAL_KINDS:
        assert kind in str(info.value)


def test_adversarial_gradient_and_half_inputs():
    logits = torch.randn(2, 1, 4, 4, requires_grad=True)
    real = torch.randn(2, 1, 4, 4)
    for kind in ADVERSARIAL_KINDS:
        loss = AdversarialLoss(kind).generator_loss(logits, real_out=real)
        (grad,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
        d_loss = AdversarialLoss(kind, gp_weight=0).discriminator_loss(
            real.half(), logits.detach().half()
        )
        assert d_loss.dtype == torch.float32


def test_lsgan_sigmoid_is_edgeconnects_official_lsgan():
    """EdgeConnect's discriminator ends in a sigmoid for every kind but hinge, so its lsgan is
    MSE(sigmoid(x), label); ``lsgan`` (StructureFlow: no sigmoid) is MSE(x, label)."""
    x = torch.tensor([[2.0, -1.0, 0.5]])
    official = AdversarialLoss("lsgan_sigmoid")
    raw = AdversarialLoss("lsgan")
    assert official(x, True).item() == pytest.approx(((torch.sigmoid(x) - 1) ** 2).mean().item())
    assert raw(x, True).item() == pytest.approx(((x - 1) ** 2).mean().item())
    assert official(x, False).item() == pytest.approx((torch.sigmoid(x) ** 2).mean().item())
    assert official(x, True).item() != pytest.approx(raw(x, True).item())


def test_discriminator_and_generator_loss_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    hinge = AdversarialLoss("hinge")
    assert hinge.discriminator_loss(real, fake).item() == pytest.approx(0.25 + 0.75)
    assert hinge.generator_loss(fake).item() == pytest.approx(0.75)
    wgan = AdversarialLoss("wgan_gp", gp_weight=0)
    assert wgan.discriminator_loss(real, fake).item() == pytest.approx(-0.75 - 1.25)
    assert wgan.generator_loss(fake).item() == pytest.approx(0.75)
    ra = AdversarialLoss("ralsgan")
    # D: ((r - mean f - 1)^2 + (f - mean r + 1)^2) / 2 with mean f = -0.75, mean r = 1.25
    d = 0.5 * (((real + 0.75 - 1) ** 2).mean() + ((fake - 1.25 + 1) ** 2).mean())
    g = 0.5 * (((real + 0.75 + 1) ** 2).mean() + ((fake - 1.25 - 1) ** 2).mean())
    assert ra.discriminator_loss(real, fake).item() == pytest.approx(d.item())
    assert ra.generator_loss(fake, real_out=real).item() == pytest.approx(g.item())
    with pytest.raises(ValueError, match="real_out"):
        ra.generator_loss(fake)
    # multi-scale outputs: the mean over scales; (logits, features) tuples: the logits
    ns = AdversarialLoss("nsgan")
    scales = [torch.zeros(1, 1, 2, 2), torch.full((1, 1, 1, 1), 3.0)]
    expected = (ns(scales[0], True) + ns(scales[1], True)) / 2
    assert ns.generator_loss(scales).item() == pytest.approx(expected.item())
    assert ns.generator_loss((scales[1], ["features"])).item() == pytest.approx(
        ns(scales[1], True).item()
    )


def test_masked_gradient_penalty_on_a_hand_computed_case():
    """A linear critic D(x) = sum(2 x) has gradient 2 everywhere: unmasked, the norm over a 2x2
    image is 4 (GP 9); masked to one hole pixel it is 2 (GP 1), whatever the interpolation."""
    from inpaintzoo.losses import gradient_penalty

    def critic(x):
        return (2.0 * x).sum(dim=(1, 2, 3))

    real, fake = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)
    mask = torch.zeros(3, 1, 2, 2)
    mask[..., 0, 0] = 1
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(9.0)
    assert gradient_penalty(critic, real, fake, mask).item() == pytest.approx(1.0)
    loss = AdversarialLoss("wgan_gp", gp_weight=10.0)
    d = loss.discriminator_loss(
        critic(real), critic(fake), critic=critic, real=real, fake=fake, mask=mask
    )
    expected = critic(fake).mean() - critic(real).mean() + 10.0
    assert d.item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="critic"):
        loss.discriminator_loss(critic(real), critic(fake))


def test_pconv_family_terms_on_known_inputs():
    """A stub extractor returning {a: x, b: 2x}: hand-computed L1 of features and Grams, on the
    output (1) and on the composite (0.5 with a mask of 0.5) against the target (0)."""
    from inpaintzoo.losses import PConvLoss, total_variation

    out = torch.full((1, 2, 2, 2), 1.0)
    gt = torch.zeros(1, 2, 2, 2)
    mask = torch.full((1, 1, 2, 2), 0.5)
    loss = PConvLoss(extractor=lambda x: {"a": x, "b": 2 * x})
    terms = loss(out, gt, mask)
    assert terms["hole"].item() == pytest.approx(0.5) and terms["valid"].item() == pytest.approx(
        0.5
    )
    # perceptual: layer a: 1 + 0.5, layer b: 2 + 1 -> 4.5
    assert terms["perceptual"].item() == pytest.approx(4.5)
    # Gram of a constant c map with C=2, H*W=4: every entry c^2 * 4 / (2*4) = c^2 / 2
    # layer a: 0.5 + 0.125; layer b (2c): 2 + 0.5 -> 3.125
    assert terms["style"].item() == pytest.approx(3.125)
    assert terms["tv"].item() == 0.0  # a constant composite
    assert set(PConvLoss(terms=("hole", "valid"))(out, gt, mask)) == {"hole", "valid"}
    step = torch.zeros(1, 1, 4, 4)
    step[..., 2:] = 1.0
    region = torch.zeros(1, 1, 4, 4)
    region[..., :, 1:3] = 1  # only the pairs (1, 2) inside: all differ by 1
    assert total_variation(step, region).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown PConv loss terms"):
        PConvLoss(terms=("hole", "gan"))


# --------------------------------------------------------------------------- reconstruction


def test_l1_variants_known_values():
    target = torch.zeros(2, 3, 4, 4)
    pred = torch.zeros(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, :2, :] = 1  # half the image is hole
    pred[:, :, :2, :] = 0.5  # error 0.5 in the hole
    pred[:, :, 2:, :] = 0.1  # error 0.1 in the known part
    assert l1_loss(pred, target).item() == pytest.approx(0.3)
    # EdgeConnect: mean|d| / mean(m) = 0.3 / 0.5
    assert hole_normalized_l1(pred, target, mask).item() == pytest.approx(0.6)
    assert masked_l1(pred, target, mask, "hole").item() == pytest.approx(0.5)
    assert masked_l1(pred, target, mask, "valid").item() == pytest.approx(0.1)
    # all-known mask: the clamp (1 %) keeps the value finite
    known = torch.zeros_like(mask)
    assert hole_normalized_l1(pred, target, known).item() == pytest.approx(0.3 / 0.01)
    assert masked_l1(pred, target, known, "hole").item() == 0.0
    with pytest.raises(ValueError):
        masked_l1(pred, target, mask, "everything")


def test_feature_matching_loss():
    fake = [torch.ones(1, 2, 4, 4, requires_grad=True), torch.zeros(1, 3, 2, 2, requires_grad=True)]
    real = [torch.zeros(1, 2, 4, 4, requires_grad=True), torch.full((1, 3, 2, 2), 0.5)]
    loss = feature_matching_loss(fake, real)
    assert loss.item() == pytest.approx(1.0 + 0.5)
    loss.backward()
    assert fake[0].grad is not None and real[0].grad is None  # real features detached
    with pytest.raises(ValueError):
        feature_matching_loss(fake, real[:1])


def test_gram_matrix_known_tensor():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)  # C=2, H=1, W=2
    gram = gram_matrix(features)
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)
    torch.testing.assert_close(gram[0], expected)
    half = features.to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert gram_matrix(half).dtype == torch.float32


# --------------------------------------------------------------------------- VGG19


def test_vgg19_layer_indices_match_torchvision():
    from torchvision.models import vgg19

    with torch.device("meta"):
        features = vgg19(weights=None).features
    for name, index in VGG19_LAYER_INDICES.items():
        assert isinstance(features[index], nn.ReLU), name
        assert isinstance(features[index - 1], nn.Conv2d), name
    assert VGG19_LAYER_INDICES["relu1_1"] == 1
    assert VGG19_LAYER_INDICES["relu5_1"] == 29
    assert VGG19_LAYER_INDICES["relu5_4"] == 35


def test_vgg19_features_random_shapes_frozen_and_warns(caplog):
    with caplog.at_level(logging.WARNING):
        extractor = VGG19Features(["relu1_1", "relu2_2", "relu3_4", "relu5_2"], weights="random")
    assert any("RANDOM" in record.getMessage() for record in caplog.records)
    assert len(extractor.features) == VGG19_LAYER_INDICES["relu5_2"] + 1  # truncated
    assert not any(p.requires_grad for p in extractor.parameters())
    extractor.train()
    assert not extractor.training
    out = extractor(torch.rand(1, 3, 64, 64))
    assert list(out) == ["relu1_1", "relu2_2", "relu3_4", "relu5_2"]
    assert out["relu1_1"].shape == (1, 64, 64, 64)
    assert out["relu2_2"].shape == (1, 128, 32, 32)
    assert out["relu3_4"].shape == (1, 256, 16, 16)
    assert out["relu5_2"].shape == (1, 512, 4, 4)
    assert (out["relu3_4"] >= 0).all()
    with pytest.raises(ValueError):
        VGG19Features(["relu6_1"], weights="random")


def test_missing_weights_error_names_the_file(hub_dir):
    expected = hub_dir / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert vgg19_weights_path() == expected
    with pytest.raises(MissingWeightsError) as info:
        VGG19Features(["relu1_1"], weights="imagenet")
    message = str(info.value)
    assert str(expected) in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "perceptual_backbone=off" in message and "perceptual_backbone=random" in message
    assert isinstance(info.value, RuntimeError)
    with pytest.raises(MissingWeightsError):
        VGGLoss(0.1, 250.0)  # default weights="imagenet"


def test_imagenet_loading_code_reads_torchvision_format(hub_dir):
    """The loading code path, fed a file in torchvision's key format with random values
    (written here to tmp; no pretrained weights involved)."""
    from torchvision.models import vgg19

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in vgg19(weights=None).state_dict().items()}
    state = {k: torch.randn(s) for k, s in shapes.items() if k.startswith("features.")}
    path = vgg19_weights_path()
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    extractor = VGG19Features(["relu2_1"], weights="imagenet")
    torch.testing.assert_close(extractor.features[5].weight, state["features.5.weight"])
    assert len(extractor.features) == 7


def test_vgg_weights_stay_out_of_state_dict(random_vgg):
    parent = nn.Module()
    parent.head = nn.Linear(2, 2)
    parent.loss = PerceptualLoss(extractor=random_vgg)
    keys = list(parent.state_dict())
    assert keys == ["head.weight", "head.bias"]
    before = random_vgg.features[0].weight.clone()
    parent.load_state_dict({k: torch.zeros_like(v) for k, v in parent.state_dict().items()})
    torch.testing.assert_close(random_vgg.features[0].weight, before)


def test_perceptual_loss_zero_identical_positive_otherwise_grad_to_pred(random_vgg):
    loss_fn = PerceptualLoss(extractor=random_vgg)
    target = torch.rand(1, 3, 16, 16, requires_grad=True)
    assert loss_fn(target.detach(), target.detach()).item() == 0.0
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss = loss_fn(pred, target)
    assert loss.item() > 0
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert target.grad is None  # target features under no_grad
    assert all(p.grad is None for p in random_vgg.parameters())


def test_style_loss(random_vgg):
    loss_fn = StyleLoss(extractor=random_vgg)
    x = torch.rand(1, 3, 16, 16)
    assert loss_fn(x, x).item() == 0.0
    pred = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss = loss_fn(pred, x)
    assert loss.item() > 0
    loss.backward()
    assert pred.grad.abs().sum() > 0


def test_vgg_loss_matches_separate_losses_and_runs_vgg_once_per_tensor(random_vgg):
    calls = []
    handle = random_vgg.register_forward_hook(lambda *args: calls.append(1))
    try:
        vgg_loss = VGGLoss(0.1, 250.0, extractor=random_vgg)
        pred, target = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
        out = vgg_loss(pred, target)
        assert len(calls) == 2  # once for pred, once for target
        perceptual = PerceptualLoss(extractor=random_vgg)(pred, target)
        style = StyleLoss(extractor=random_vgg)(pred, target)
        torch.testing.assert_close(out["perceptual"], perceptual)  # unweighted terms
        torch.testing.assert_close(out["style"], style)
        torch.testing.assert_close(vgg_loss.weighted_sum(out), 0.1 * perceptual + 250 * style)
        # EdgeConnect: style on masked images -> two more passes
        mask = torch.zeros(1, 1, 16, 16)
        mask[..., 4:12, 4:12] = 1
        calls.clear()
        out = vgg_loss(pred, target, style_pred=pred * mask, style_target=target * mask)
        assert len(calls) == 4
        torch.testing.assert_close(
            out["style"], StyleLoss(extractor=random_vgg)(pred * mask, target * mask)
        )
    finally:
        handle.remove()


def test_vgg_loss_with_zero_weights_builds_no_vgg(hub_dir):
    # the hub dir is empty: building any VGG with imagenet weights would raise
    vgg_loss = VGGLoss(0.0, 0.0)
    assert vgg_loss.extractor is None
    assert not list(vgg_loss.parameters())
    out = vgg_loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    assert out["perceptual"].item() == 0.0 and out["style"].item() == 0.0


def test_vgg_loss_truncates_at_deepest_needed_layer(caplog):
    perceptual_only = VGGLoss(1.0, 0.0, weights="random")
    assert perceptual_only.extractor.layer_names == tuple(
        ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    )
    assert len(perceptual_only.extractor.features) == VGG19_LAYER_INDICES["relu5_1"] + 1
    style_only = VGGLoss(0.0, 1.0, weights="random", style_layers=("relu2_2",))
    assert len(style_only.extractor.features) == VGG19_LAYER_INDICES["relu2_2"] + 1
    out = style_only(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    assert out["perceptual"].item() == 0.0 and out["style"].item() > 0
