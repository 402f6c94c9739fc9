"""PConv's own facts: the partial-convolution U-Net against specs/pconv.md §2 and §6 (layer
fingerprints of both official sizes, counts, shapes, mask polarity), the loss on hand-computed
inputs (TV region, working space, VGG input normalisation) and the BN-frozen fine-tune stage.
The registry-wide contract tests (tests/test_contract.py) cover counts, CLI, learning,
checkpoints, predictor and export. Full-size nets live on the meta device; full-size compute only
in the slow test."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import embedded_batch, fit
from inpaintzoo import zoo
from inpaintzoo.blocks.partial_conv import PartialConv2d, PartialConvBlock
from inpaintzoo.nets.pconv import OFFICIAL_PARAM_COUNTS_BY_VARIANT, build_pconv_nets

# ----------------------------------------------------------------------------- spec tables
# (in, out, kernel, stride, padding, bias, batch norm, activation) of every partial conv, from
# the spec's layer table (not from the modules under test); all multi-channel.
Row = tuple[int, int, int, int, int, bool, bool, str]


def spec_rows(levels: int) -> list[Row]:
    widths = [64, 128, 256, 512] + [512] * (levels - 4)
    kernels = [7, 5, 5] + [3] * (levels - 3)
    enc, prev = [], 3
    for i, (w, k) in enumerate(zip(widths, kernels)):
        enc.append((prev, w, k, 2, k // 2, False, i > 0, "ReLU"))
        prev = w
    dec = [(1024, 512, 3, 1, 1, False, True, "LeakyReLU")] * (levels - 4)
    dec += [
        (768, 256, 3, 1, 1, False, True, "LeakyReLU"),
        (384, 128, 3, 1, 1, False, True, "LeakyReLU"),
        (192, 64, 3, 1, 1, False, True, "LeakyReLU"),
        (67, 3, 3, 1, 1, True, False, "none"),
    ]
    return enc + dec


def fingerprint(net: nn.Module) -> list[Row]:
    rows = []
    for block in net.modules():
        if not isinstance(block, PartialConvBlock):
            continue
        c = block.conv
        assert isinstance(c, PartialConv2d) and c.multi_channel and c.dilation == (1, 1)
        act = "none" if block.activation is None else type(block.activation).__name__
        rows.append(
            (
                c.in_channels,
                c.out_channels,
                c.kernel_size[0],
                c.stride[0],
                c.padding[0],
                c.bias is not None,
                block.bn is not None,
                act,
            )
        )
    return rows


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta_net(variant: str) -> nn.Module:
    with torch.device("meta"):
        return build_pconv_nets(variant)["generator"]


# ----------------------------------------------------------------------------- nets
@pytest.mark.parametrize(("variant", "levels"), [("full", 7), ("full512", 8)])
def test_both_official_sizes_layer_by_layer(variant, levels):
    net = meta_net(variant)
    assert count(net) == OFFICIAL_PARAM_COUNTS_BY_VARIANT[variant]["generator"]
    assert {"full": 25_779_796, "full512": 32_859_732}[variant] == count(net)  # spec §6
    assert fingerprint(net) == spec_rows(levels)
    assert list(net.encoder) == [f"enc_{i}" for i in range(1, levels + 1)]
    assert list(net.decoder) == [f"dec_{i}" for i in range(levels, 0, -1)]
    assert all(b.activation.negative_slope == 0.2 for b in list(net.decoder.values())[:-1])
    # the all-ones mask kernels are buffers outside the state dict, never parameters
    assert not any("mask" in name for name, _ in net.named_parameters())
    assert not any("mask_kernel" in key for key in net.state_dict())


def test_sizes_follow_the_depth():
    assert zoo.create_model("pconv", variant="tiny", perceptual_backbone="off").size_multiple == 32
    with torch.device("meta"):
        assert zoo.create_model("pconv").size_multiple == 128
        assert zoo.create_model("pconv", variant="full512").min_size == 256


def test_full_intermediate_shapes_at_256():
    net = meta_net("full")
    seen = {}
    for name, block in [*net.encoder.items(), *net.decoder.items()]:
        block.register_forward_hook(
            lambda m, a, o, name=name: seen.update({name: (tuple(o[0].shape), o[1].shape[1])})
        )
    with torch.device("meta"):
        out = net(torch.empty(2, 3, 256, 256), torch.zeros(2, 1, 256, 256))
    widths = [64, 128, 256, 512, 512, 512, 512]
    for i, w in enumerate(widths, start=1):
        assert seen[f"enc_{i}"] == ((2, w, 256 >> i, 256 >> i), w)  # multi-channel masks
    assert seen["enc_7"][0] == (2, 512, 2, 2)
    # dec_i upsamples to H / 2**(i-1) and ends at the width of enc_{i-1}
    assert seen["dec_7"][0] == (2, 512, 4, 4) and seen["dec_4"][0] == (2, 256, 32, 32)
    assert seen["dec_2"][0] == (2, 64, 128, 128) and seen["dec_1"] == ((2, 3, 256, 256), 3)
    assert out.shape == (2, 3, 256, 256)
    with torch.device("meta"), pytest.raises(ValueError, match="divisible by 128"):
        net(torch.empty(1, 3, 192, 256), torch.zeros(1, 1, 192, 256))


def test_mask_polarity_is_converted_once_and_the_hole_is_never_read():
    torch.manual_seed(0)
    net = build_pconv_nets("tiny")["generator"].eval()
    x, mask = torch.randn(2, 3, 64, 64), (torch.rand(2, 1, 64, 64) > 0.7).float()
    seen = {}
    net.encoder["enc_1"].register_forward_pre_hook(lambda m, a: seen.update(enc=a[1]))
    net.decoder["dec_1"].register_forward_pre_hook(lambda m, a: seen.update(dec=a[1]))
    with torch.no_grad():
        out = net(x, mask)
        again = net(torch.where(mask > 0, torch.randn_like(x), x), mask)
    assert torch.equal(seen["enc"], (1 - mask).expand(-1, 3, -1, -1))  # 1 = valid inside
    assert torch.equal(seen["dec"][:, -3:], (1 - mask).expand(-1, 3, -1, -1))  # input skip
    assert torch.equal(out, again)


# ----------------------------------------------------------------------------- method
def tiny(**kwargs):
    kwargs.setdefault("perceptual_backbone", "off")
    return zoo.create_model("pconv", variant="tiny", **kwargs)


@pytest.fixture(scope="module")
def batch():
    return embedded_batch(n=4, size=64, seed=3)


def test_recipe_schedule_and_options():
    model = tiny()
    assert model.weights == {
        "valid": 1.0,
        "hole": 6.0,
        "perceptual": 0.05,
        "style": 120.0,
        "tv": 0.1,
    }
    assert model.lr == 2e-4 and model.betas == (0.9, 0.999)
    assert model.resolve_schedule(None) == [
        {"stage": "train", "batches": 500_000, "lr": 2e-4},
        {"stage": "finetune", "batches": 500_000, "lr": 5e-5},
    ]
    assert model.net_names == ("generator",)
    with pytest.raises(ValueError, match="normalization"):
        tiny(normalization="unit")
    with pytest.raises(ValueError, match="tv_region"):
        tiny(tv_region="dilated")
    assert "no official release" in " ".join(model.run_notes())


def test_working_space_and_vgg_input_normalisation():
    image = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    imagenet, unit = tiny(), tiny(normalization="none")
    torch.testing.assert_close(imagenet.to_space(image), (image - mean) / std)
    torch.testing.assert_close(imagenet.from_space(imagenet.to_space(image)), image)
    assert torch.equal(unit.to_space(image), image)
    # the VGG always sees ImageNet-normalised images: normalised by the extractor only when the
    # working space is [0, 1]
    for normalization, inside in (("imagenet", False), ("none", True)):
        model = tiny(normalization=normalization, perceptual_backbone="random")
        loss = model.pconv_loss
        assert loss.extractor.normalize_input is inside
        assert loss.extractor.layer_names == ("pool1", "pool2", "pool3")
        assert set(loss.terms) == {"hole", "valid", "tv", "perceptual", "style"}
    assert tiny().pconv_loss.extractor is None  # VGG terms off: no VGG built


def test_loss_values_on_a_hand_computed_case():
    """Target 0, output 0.1 everywhere, a one-pixel hole at (3, 3) of an 8 x 8 image."""
    target = torch.zeros(1, 3, 8, 8)
    output = torch.full_like(target, 0.1)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 3, 3] = 1
    terms = tiny().generator_losses(output, target, mask)
    assert terms["hole"].item() == pytest.approx(0.1 / 64)
    assert terms["valid"].item() == pytest.approx(0.1 * 63 / 64)
    # composite = 0.1 at the hole pixel only; P = the 3 x 3 block around it: per direction 2 of
    # the 6 neighbour pairs inside P differ by 0.1
    assert terms["tv"].item() == pytest.approx(2 * (2 * 0.1 / 6))
    whole = tiny(tv_region="image").generator_losses(output, target, mask)
    assert whole["tv"].item() == pytest.approx(2 * (2 * 0.1 / 56))  # naoto0804: all 56 pairs


def test_loss_is_computed_in_the_working_space(batch):
    model = tiny(stage="train")
    seen = {}
    orig = model.generator_losses

    def spy(output, image, mask):
        seen["image"] = image
        return orig(output, image, mask)

    model.generator_losses = spy
    fit(model, batch, 1)
    torch.testing.assert_close(seen["image"], model.to_space(batch["image"]))


def test_finetune_freezes_only_the_encoder_batch_norms(batch):
    model = tiny(
        schedule=[
            {"stage": "train", "batches": 1, "lr": 2e-4},
            {"stage": "finetune", "batches": 2, "lr": 5e-5},
        ]
    )
    enc_bn = model.generator.encoder["enc_2"].bn
    dec_bn = model.generator.decoder["dec_2"].bn
    assert len(model.generator.encoder_batch_norms()) == 4  # enc_2..enc_5 (enc_1 has no BN)
    stats = {}
    orig = model.training_batch

    def spy(b):
        stats[model.batches_seen] = (
            model.current_stage(),
            enc_bn.running_mean.clone(),
            dec_bn.running_mean.clone(),
            enc_bn.training,
        )
        return orig(b)

    model.training_batch = spy
    fit(model, batch, 3)
    assert [stats[i][0] for i in range(3)] == ["train", "finetune", "finetune"]
    assert [stats[i][3] for i in range(3)] == [True, False, False]
    assert not torch.equal(stats[0][1], stats[1][1])  # the train batch updated encoder stats
    assert torch.equal(stats[1][1], stats[2][1]) and torch.equal(stats[2][1], enc_bn.running_mean)
    assert not torch.equal(stats[1][2], stats[2][2])  # decoder BNs keep updating
    optimizer = model.optimizers()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-5)
    # the fine-tune keeps Adam's state (naoto0804 resumes it): 3 steps, not 2
    assert {float(s["step"]) for s in optimizer.optimizer.state.values()} == {3.0}


def test_finetune_alone_needs_a_trained_generator(batch):
    from inpaintzoo.methods.base import StageRequirementError

    with pytest.raises(StageRequirementError, match="finetune .* needs a trained generator"):
        fit(tiny(stage="finetune"), batch, 1)


@pytest.mark.slow
def test_full_size_forward_backward_at_smallest_size():
    """The 7-level network at 128 px (its smallest legal size) with every loss term (random VGG
    weights: the ImageNet file is not here)."""
    torch.manual_seed(0)
    model = zoo.create_model("pconv", variant="full", perceptual_backbone="random")
    b = embedded_batch(n=2, size=128, seed=0)
    target = model.to_space(b["image"])
    output = model.generator(target, b["mask"])
    terms = model.generator_losses(output, target, b["mask"])
    assert set(terms) == {"hole", "valid", "perceptual", "style", "tv"}
    sum(model.weights[k] * v for k, v in terms.items()).backward()
    assert output.shape == (2, 3, 128, 128)
    assert all(torch.isfinite(v) for v in terms.values())
    assert model.generator.encoder["enc_1"].conv.weight.grad.abs().sum() > 0
