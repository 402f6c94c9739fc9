"""PRVS's own facts: the VSR layer's defining property (edges updated only in the ring that just
became valid), the networks against specs/prvs.md §1 and §4 (component counts, layer
fingerprints, shapes, mask polarity), the LightningModule (loss values, G-then-D order, the
fine-tune with the encoder's BatchNorms frozen and fresh optimizers, the paper schedule) and the
official-weights importer against the official code's outputs. The registry-wide contract
tests (tests/test_contract.py) cover counts, CLI, learning, checkpoints, predictor and export.
Full-size nets live on the meta device except in the parity and slow tests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import embedded_batch, fit
from inpaintzoo import zoo
from inpaintzoo.blocks import (
    PartialConv2d,
    PartialConvBlock,
    ResidualBottleneck,
    VisualStructureReconstruction,
    has_spectral_norm,
)
from inpaintzoo.losses import total_variation
from inpaintzoo.nets.prvs import (
    OFFICIAL_PARAM_COUNTS,
    PRVSDecoderLevel,
    build_prvs_nets,
    convert_official_discriminator_state_dict,
    convert_official_state_dict,
)

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "prvs"
TOL = 1e-5


# ----------------------------------------------------------------------------- VSR block
def test_vsr_updates_the_edge_only_in_the_ring_that_became_valid():
    """Left half known: the reconstructed edge is the input edge there, the generated edge in
    the k // 2 = 1 pixel ring that the edge conv made valid, exactly 0 deeper in the hole; the
    hole's input edges are never used; the output mask is that grown region."""
    torch.manual_seed(0)
    vsr = VisualStructureReconstruction(2, 4, kernel_size=3, stride=1, edge_channels=8).eval()
    x = torch.rand(1, 2, 16, 16)
    valid = torch.zeros(1, 2, 16, 16)
    valid[..., :8] = 1
    edge = (torch.rand(1, 1, 16, 16) > 0.5).float()
    with torch.no_grad():
        features, out_valid, rebuilt = vsr(x, valid, edge)
        generated, grown = vsr.generate_edge(x, valid, edge)
        _, _, other = vsr(x, valid, torch.where(valid[:, :1] > 0, edge, 1 - edge))
    assert torch.equal(rebuilt[..., :8], edge[..., :8])  # known edges kept
    assert torch.equal(rebuilt[..., 8], generated[..., 8])  # the new ring: generated logits
    assert generated[..., 8].abs().sum() > 0
    assert torch.equal(rebuilt[..., 9:], torch.zeros(1, 1, 16, 7))  # still unknown: 0
    assert torch.equal(rebuilt, other)  # input edges in the hole are ignored
    assert torch.equal(grown[:, 0, :, :9], torch.ones(16, 9)[None])  # grown by k // 2
    assert torch.equal(out_valid[0, 0], grown[0, 0]) and out_valid.shape == (1, 4, 16, 16)
    assert features.shape == (1, 4, 16, 16)


def test_vsr_stride_upsample_and_sizes():
    vsr = VisualStructureReconstruction(3, 8, kernel_size=7, stride=2, edge_channels=8)
    x, valid, edge = torch.rand(2, 3, 32, 32), torch.ones(2, 3, 32, 32), torch.rand(2, 1, 64, 64)
    feats, v, e = vsr(x, valid, edge)
    assert feats.shape == (2, 8, 16, 16) and v.shape == (2, 8, 16, 16)
    assert e.shape == (2, 1, 32, 32)  # the edge map is resized (nearest) to the features first
    up = VisualStructureReconstruction(8, 4, stride=1, upsample=True, activation="none")
    f2, v2, e2 = up(feats, v, e)
    assert f2.shape == (2, 4, 32, 32) and v2.shape == (2, 4, 32, 32) and e2.shape == (2, 1, 16, 16)
    assert up.activation is None and isinstance(up.upsample, nn.ConvTranspose2d)
    block = ResidualBottleneck(8, 2)
    y = torch.rand(1, 8, 4, 4)
    assert block(y).shape == y.shape and (block(y) >= 0).all()


# ----------------------------------------------------------------------------- nets (meta)
Row = tuple[str, int, int, int, int, int, bool, bool]  # type, in, out, k, stride, pad, bias, SN


def _vsr(cin: int, cout: int, k: int, stride: int, upsample: bool) -> list[Row]:
    p = k // 2
    rows = [
        ("PConv", cin + 1, 64, k, 1, p, False, False),  # edge generator p_conv
        ("Conv2d", 64, 16, 1, 1, 0, False, False),  # Bottleneck(64, 16)
        ("Conv2d", 16, 16, 3, 1, 1, False, False),
        ("Conv2d", 16, 64, 1, 1, 0, False, False),
        ("Conv2d", 64, 1, 1, 1, 0, False, False),  # edge out_layer
        ("PConv", cin + 1, cout, k, stride, p, True, False),  # feat_rec
    ]
    if upsample:
        rows.append(("ConvTranspose2d", cout, cout, 4, 2, 1, True, False))
    return rows


def _spec_generator() -> list[Row]:
    rows = _vsr(3, 64, 7, 2, False) + _vsr(64, 128, 5, 2, False)  # enc_1, enc_2
    rows.append(("PConv", 128, 256, 5, 2, 2, False, False))  # enc_3
    rows.append(("PConv", 256, 512, 3, 2, 1, False, False))  # enc_4
    rows += [("PConv", 512, 512, 3, 2, 1, False, False)] * 4  # enc_5..8
    rows.append(("ConvTranspose2d", 512, 512, 4, 2, 1, True, False))  # deconv
    for cin, cout in [(1024, 512)] * 4 + [(768, 256), (384, 128)]:  # dec_8..dec_3
        rows.append(("PConv", cin, cout, 3, 1, 1, False, False))
        rows.append(("ConvTranspose2d", cout, cout, 4, 2, 1, False, False))
    rows += _vsr(192, 64, 3, 1, True) + _vsr(67, 64, 3, 1, False)  # dec_2, dec_1
    rows += [
        ("Conv2d", 64, 16, 1, 1, 0, False, False),  # resolver Bottleneck(64, 16)
        ("Conv2d", 16, 16, 3, 1, 1, False, False),
        ("Conv2d", 16, 64, 1, 1, 0, False, False),
        ("Conv2d", 128, 3, 1, 1, 0, True, False),  # output
    ]
    return rows


SPEC_DISCRIMINATOR: list[Row] = [
    ("Conv2d", cin, cout, 4, s, 1, False, True)
    for cin, cout, s in [(2, 64, 2), (64, 128, 2), (128, 256, 2), (256, 512, 1), (512, 1, 1)]
]


def _fingerprint(net: nn.Module) -> list[Row]:
    rows = []
    for name, m in net.named_modules():
        if "parametrizations" in name or not isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            continue
        kind = "PConv" if isinstance(m, PartialConv2d) else "Conv2d"
        kind = "ConvTranspose2d" if isinstance(m, nn.ConvTranspose2d) else kind
        rows.append(
            (
                kind,
                m.in_channels,
                m.out_channels,
                m.kernel_size[0],
                m.stride[0],
                m.padding[0],
                m.bias is not None,
                has_spectral_norm(m),
            )
        )
    return rows


@pytest.fixture(scope="module")
def full_nets():
    with torch.device("meta"):
        return build_prvs_nets("full")


def _count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def test_official_counts_are_the_spec_numbers():
    assert OFFICIAL_PARAM_COUNTS == {"generator": 55_543_043, "edge_discriminator": 2_762_752}


def test_component_counts_match_the_spec_table(full_nets):
    g = full_nets["generator"]
    bottleneck = 64 * 16 + 16 * 16 * 9 + 16 * 64 + 2 * (16 + 16 + 64)  # convs + BN affine

    def vsr(cin: int, cout: int, k: int, bn: bool, up: bool) -> int:
        edge = (cin + 1) * 64 * k * k + bottleneck + 64
        feat = (cin + 1) * cout * k * k + cout
        return edge + feat + (2 * cout if bn else 0) + (cout * cout * 16 + cout if up else 0)

    assert _count(g.encoder[0]) == vsr(3, 64, 7, True, False) == 29_888
    assert _count(g.encoder[1]) == vsr(64, 128, 5, True, False)
    assert _count(g.encoder[2]) == 128 * 256 * 25 + 2 * 256
    assert _count(g.encoder[3]) == 256 * 512 * 9 + 2 * 512
    assert _count(*g.encoder[4:]) == 4 * (512 * 512 * 9 + 2 * 512)
    assert _count(g.bottom_up) == 512 * 512 * 16 + 512
    level = {i: _count(g.decoder[f"dec_{i}"]) for i in range(1, 9)}
    assert [level[i] for i in (8, 7, 6, 5)] == [1024 * 512 * 9 + 512 * 512 * 16 + 1024] * 4
    assert level[4] == 768 * 256 * 9 + 256 * 256 * 16 + 512
    assert level[3] == 384 * 128 * 9 + 128 * 128 * 16 + 256
    assert level[2] == vsr(192, 64, 3, True, True) and level[1] == vsr(67, 64, 3, False, False)
    assert _count(g.resolver) == bottleneck and _count(g.output) == 128 * 3 + 3
    assert len(g.encoder) == 8 and list(g.decoder) == [f"dec_{i}" for i in range(8, 0, -1)]


def test_full_layer_fingerprints(full_nets):
    assert _fingerprint(full_nets["generator"]) == _spec_generator()
    assert _fingerprint(full_nets["edge_discriminator"]) == SPEC_DISCRIMINATOR


def test_norms_activations_and_the_official_dec_2_quirk(full_nets):
    g = full_nets["generator"]
    for layer in g.encoder[2:]:
        assert isinstance(layer, PartialConvBlock) and isinstance(layer.activation, nn.ReLU)
        assert layer.bn is not None
    for i in range(3, 9):
        level = g.decoder[f"dec_{i}"]
        assert isinstance(level, PRVSDecoderLevel) and level.activation.negative_slope == 0.2
    enc_1, dec_2, dec_1 = g.encoder[0], g.decoder["dec_2"], g.decoder["dec_1"]
    assert isinstance(enc_1.activation, nn.ReLU) and enc_1.norm is not None
    assert dec_2.activation is None and dec_2.norm is not None  # 'leaky' != "Leaky" officially
    assert dec_1.activation is None and dec_1.norm is None and dec_1.upsample is None
    assert all(m.multi_channel for m in g.modules() if isinstance(m, PartialConv2d))
    frozen = g.encoder_batch_norms()
    assert len(frozen) == 2 * 4 + 6  # enc_1, enc_2: 3 bottleneck BNs + their own; enc_3..8
    decoder_bns = [m for m in g.decoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert not set(map(id, frozen)) & set(map(id, decoder_bns))


def test_full_intermediate_shapes_at_256(full_nets):
    g, d = full_nets["generator"], full_nets["edge_discriminator"]
    with torch.device("meta"):
        x, m = torch.empty(2, 3, 256, 256), torch.empty(2, 1, 256, 256)
        f = g.features(x, m, m)
        logits, _ = d(torch.empty(2, 2, 256, 256))
        small, _ = d(torch.empty(2, 2, 128, 128))
    widths = [64, 128, 256, 512, 512, 512, 512, 512]
    assert [tuple(t.shape[1:]) for t in f["encoder"]] == [(3, 256, 256)] + [
        (w, 256 >> i, 256 >> i) for i, w in enumerate(widths, 1)
    ]
    assert [t.shape[1] for t in f["encoder_masks"]] == [3, *widths]
    assert [tuple(t.shape[-2:]) for t in f["edges"]] == [
        (256, 256),
        (128, 128),
        (128, 128),
        (256, 256),
    ]
    assert [tuple(t.shape[1:]) for t in f["decoder"]] == [
        (512, 4, 4),
        (512, 8, 8),
        (512, 16, 16),
        (512, 32, 32),
        (256, 64, 64),
        (128, 128, 128),
        (64, 256, 256),
        (64, 256, 256),
    ]
    assert f["output"].shape == (2, 3, 256, 256) and f["edge_small"].shape == (2, 1, 128, 128)
    assert logits.shape == (2, 1, 30, 30) and small.shape == (2, 1, 14, 14)


def test_generator_rejects_bad_sizes(full_nets):
    with torch.device("meta"), pytest.raises(ValueError, match="divisible by 256"):
        x = torch.empty(1, 3, 128, 128)
        full_nets["generator"](x, x[:, :1], x[:, :1])


def test_generator_converts_the_mask_once(full_nets):
    """The first VSR layer gets the image and the edges times the valid mask (3 channels)."""
    torch.manual_seed(0)
    g = build_prvs_nets("tiny")["generator"].eval()
    seen = {}
    g.encoder[0].register_forward_pre_hook(lambda m, a: seen.update(x=a[0], v=a[1], e=a[2]))
    image, edge = torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.8).float()
    mask = (torch.rand(1, 1, 64, 64) > 0.6).float()
    with torch.no_grad():
        g(image, edge, mask)
    valid = 1 - mask
    assert torch.equal(seen["v"], valid.expand(-1, 3, -1, -1))
    assert torch.equal(seen["x"], image * valid) and torch.equal(seen["e"], edge * valid)


# ----------------------------------------------------------------------------- method
def tiny(**kwargs):
    kwargs.setdefault("perceptual_backbone", "off")
    kwargs.setdefault("canny_sigma", 1.0)
    return zoo.create_model("prvs", variant="tiny", **kwargs)


@pytest.fixture(scope="module")
def batch():
    return embedded_batch(n=4, size=64, seed=3)


def test_module_attributes_and_paper_schedule():
    model = tiny()
    assert model.method_name == "prvs" and model.inference_nets == ("generator",)
    assert (model.size_multiple, model.min_size) == (64, 64)  # tiny: 6 levels
    assert model.contract.size_multiple == 256
    assert model.lr == 2e-4 and model.d2g_lr == 0.1 and model.betas == (0.9, 0.999)
    assert model.contract.structure_inputs == ("gray", "edge")
    assert model.contract.structure_params == {"canny_sigma": 2.0}
    assert tiny().resolve_schedule(1000) == [
        {"stage": "train", "batches": 750, "lr": 2e-4},
        {"stage": "finetune", "batches": 250, "lr": 5e-5},
    ]
    with pytest.raises(ValueError, match="does not state every phase length"):
        tiny().resolve_schedule(None)  # neither the paper nor run.py gives the lengths


def test_generator_terms_on_known_inputs(batch):
    model = tiny()
    b = model.prepare_batch(batch)
    image, mask, gray = b["image"], b["mask"], b["gray"]
    torch.manual_seed(0)
    out = {
        "output": (image + 0.1).clamp(max=10),
        "edge": torch.rand_like(mask),
        "edge_small": torch.rand(4, 1, 32, 32),
    }
    disc = copy.deepcopy(model.edge_discriminator)
    terms = model.generator_losses(b, out)
    assert set(terms) == {"valid", "hole", "tv", "adversarial"}  # VGG terms off
    hole_ratio = float(mask.mean())
    assert terms["hole"].item() == pytest.approx(0.1 * hole_ratio, rel=1e-4)
    assert terms["valid"].item() == pytest.approx(0.1 * (1 - hole_ratio), rel=1e-4)
    held = out["output"] * mask  # official TV_loss(comp * (1 - M)), M = 1 on known pixels
    dx = (held[..., 1:] - held[..., :-1]).abs().mean()
    dy = (held[..., 1:, :] - held[..., :-1, :]).abs().mean()
    assert terms["tv"].item() == pytest.approx(float(dx + dy), rel=1e-5)
    assert float(total_variation(held)) == pytest.approx(float(dx + dy), rel=1e-6)
    with torch.no_grad():
        big, _ = disc(torch.cat([out["edge"], gray], 1))
        small, _ = disc(torch.cat([out["edge_small"], gray[..., ::2, ::2]], 1))  # nearest /2
    expected = sum(F.binary_cross_entropy_with_logits(x, torch.ones_like(x)) for x in (big, small))
    assert terms["adversarial"].item() == pytest.approx(float(expected), rel=1e-5)


def test_discriminator_loss_on_both_edge_scales(batch):
    """Sum over scales of (BCE(D(real), 1) + BCE(D(fake), 0)) / 2 with real edges
    clamp(4 resize(edge), 0, 1) beside the resized gray (nearest), fakes detached."""
    model = tiny()
    b = model.prepare_batch(batch)
    gray, edge = b["gray"], b["edge"]
    seen = {}
    model.optimize = lambda losses, names, terms=None: seen.update(loss=losses[names], name=names)
    out = {"edge": torch.randn(4, 1, 64, 64), "edge_small": torch.randn(4, 1, 32, 32)}
    disc = copy.deepcopy(model.edge_discriminator)
    model.discriminator_update(b, out)
    expected = 0.0
    with torch.no_grad():
        for fake, step in ((out["edge_small"], 2), (out["edge"], 1)):
            g = gray[..., ::step, ::step]
            real = (edge[..., ::step, ::step] * 4).clamp(0, 1)
            r, _ = disc(torch.cat([real, g], 1))
            f, _ = disc(torch.cat([fake, g], 1))
            bce = F.binary_cross_entropy_with_logits
            expected += 0.5 * (bce(r, torch.ones_like(r)) + bce(f, torch.zeros_like(f)))
    assert seen["name"] == "edge_discriminator"
    assert float(seen["loss"]) == pytest.approx(float(expected), rel=1e-5)


def test_generator_step_first_then_finetune_freezes_encoder_batch_norms(batch):
    model = tiny(
        schedule=[
            {"stage": "train", "batches": 1, "lr": 2e-4},
            {"stage": "finetune", "batches": 2, "lr": 5e-5},
        ]
    )
    encoder_bn = model.generator.encoder[3].bn  # a PConv level of the encoder
    vsr_bn = model.generator.encoder[0].edge_resolver.bn1  # enc_1's edge generator
    decoder_bn = model.generator.decoder["dec_3"].bn
    calls, stats = [], {}
    orig_optimize, orig_batch = model.optimize, model.training_batch

    def optimize_spy(losses, names, terms=None):
        calls.append(names)
        return orig_optimize(losses, names, terms)

    def batch_spy(b):
        stats[model.batches_seen] = (
            model.current_stage(),
            *(bn.running_mean.clone() for bn in (encoder_bn, vsr_bn, decoder_bn)),
        )
        return orig_batch(b)

    model.optimize, model.training_batch = optimize_spy, batch_spy
    fit(model, batch, 3)
    assert calls == ["generator", "edge_discriminator"] * 3  # update_G, then update_D
    assert [stats[i][0] for i in range(3)] == ["train", "finetune", "finetune"]
    assert not torch.equal(stats[0][1], stats[1][1])  # the train batch updated the stats
    for k in (1, 2):  # encoder BNs (incl. the VSR edge generators') frozen while fine-tuning
        assert torch.equal(stats[1][k], stats[2][k])
    assert not torch.equal(stats[1][3], stats[2][3])  # the decoder's keep learning statistics
    g_opt, d_opt = model.optimizers()
    assert g_opt.param_groups[0]["lr"] == pytest.approx(5e-5)
    assert d_opt.param_groups[0]["lr"] == pytest.approx(5e-6)
    for opt in (g_opt, d_opt):  # new optimizers at the fine-tune (official --finetune)
        assert {float(s["step"]) for s in opt.optimizer.state.values()} == {2.0}


def test_inference_uses_test_mode_canny_of_the_known_region(batch):
    model = tiny().eval()
    image, mask = batch["image"], batch["mask"]
    out = model.inpaint(image, mask)
    expected = model.edge_map(model.prepare_batch({"image": image * (1 - mask)})["gray"], mask)
    assert torch.equal(out["input_edge"], expected * (1 - mask))
    assert out["edge"].shape == mask.shape and 0 <= out["edge"].min() and out["edge"].max() <= 1


# ----------------------------------------------------------------------------- official weights
@pytest.fixture(scope="module")
def official():
    """The fixture's official-format state dicts converted by name and loaded strictly into the
    full networks (eval mode). The file round trip through the importer is the slow test."""
    from inpaintzoo.official.synthetic import fixture_state_dicts

    meta = json.loads((FIXTURE / "keys.json").read_text())
    data = torch.load(FIXTURE / "parity.pt", weights_only=True)
    states = fixture_state_dicts(meta)
    nets = build_prvs_nets("full")
    nets["generator"].load_state_dict(convert_official_state_dict(states["generator"]))
    nets["edge_discriminator"].load_state_dict(
        convert_official_discriminator_state_dict(states["edge_discriminator"])
    )
    for net in nets.values():
        net.eval()
    return {"meta": meta, "data": data, "states": states, "nets": nets}


def _max_diff(ours: torch.Tensor, theirs: torch.Tensor, name: str) -> float:
    assert ours.shape == theirs.shape, name
    diff = float((ours.double() - theirs.double()).abs().max())
    print(f"PRVS {name}: max |ours - official| = {diff:.2e}")
    return diff


def _check_generator(generator: nn.Module, official: dict) -> None:
    data, out = official["data"]["inputs"], official["data"]["outputs"]
    image, mask, edge = data["image"].float() / 255, data["mask"].float(), data["edge"].float()
    with torch.no_grad():
        ours = generator(image * (1 - mask), edge * (1 - mask), mask)
    assert _max_diff(ours["output"], out["g_output"], "output") <= TOL
    assert _max_diff(ours["edge"], out["g_edge"], "edge (dec_1)") <= TOL
    assert _max_diff(ours["edge_small"], out["g_edge_small"], "edge_small (dec_2)") <= TOL
    assert torch.equal(ours["valid"][:, :1].to(torch.uint8), out["g_mask"])


def test_official_weights_reproduce_the_official_outputs(official):
    _check_generator(official["nets"]["generator"], official)
    disc, data = official["nets"]["edge_discriminator"], official["data"]
    gray, edge = data["inputs"]["gray"], data["inputs"]["edge"].float()
    out = data["outputs"]
    with torch.no_grad():
        for tag, fake in (("", out["g_edge"]), ("_small", out["g_edge_small"])):
            small_gray = F.interpolate(gray, size=fake.shape[-2:])
            real = (F.interpolate(edge, size=fake.shape[-2:]) * 4).clamp(0, 1)
            for kind, x in (("fake", fake), ("real", real)):
                logits, _ = disc(torch.cat([x, small_gray], dim=1))
                name = f"d_{kind}{tag}"
                assert _max_diff(torch.sigmoid(logits), out[name], name) <= TOL


def test_official_reader_picks_files_and_refuses_others(tmp_path):
    from inpaintzoo.methods.prvs import read_official_prvs
    from inpaintzoo.official import OfficialWeightsError

    with pytest.raises(FileNotFoundError, match="no g_<iter>.pth"):
        read_official_prvs(tmp_path)
    ctsdg_like = {"n_iter": 1, "generator": {"ec_texture_1.conv.weight": torch.zeros(1)}}
    torch.save(ctsdg_like, tmp_path / "g_10.pth")
    with pytest.raises(OfficialWeightsError, match=r"g_10\.pth is not a PRVS generator.*CTSDG"):
        read_official_prvs(tmp_path)
    torch.save({"n_iter": 1, "optimizer_G": {}}, tmp_path / "g_20.pth")
    with pytest.raises(OfficialWeightsError, match=r"g_20\.pth"):  # the highest iteration
        read_official_prvs(tmp_path)
    bad = {
        "n_iter": 1,
        "generator": {"enc_1.feat_rec.weight": torch.zeros(1), "att.x": torch.zeros(1)},
    }
    torch.save(bad, tmp_path / "g_30.pth")
    with pytest.raises(OfficialWeightsError, match="att.x"):
        read_official_prvs(tmp_path / "g_30.pth")
    with pytest.raises(FileNotFoundError):
        read_official_prvs(tmp_path / "absent.pth")


def test_conversion_is_by_name(official):
    state = official["states"]["generator"]
    forward = convert_official_state_dict(state)
    backward = convert_official_state_dict(dict(reversed(list(state.items()))))
    assert forward.keys() == backward.keys()
    assert all(torch.equal(forward[k], backward[k]) for k in forward)
    module = convert_official_state_dict({f"module.{k}": v for k, v in state.items()})
    assert module.keys() == forward.keys()
    assert "decoder.dec_2.upsample.bias" in forward and "bottom_up.bias" in forward
    assert forward["encoder.0.edge_conv.weight"] is state["enc_1.edge_generator.p_conv.weight"]


@pytest.mark.slow
def test_official_files_import_through_the_reader(official, tmp_path):
    """The format run.py writes, end to end: g_/d_<iter>.pth (with optimizer entries) ->
    read_official_prvs -> model_from_weights (checked, strict) -> the official outputs, also
    through the method's inference path with the official Canny map."""
    from inpaintzoo.methods.prvs import read_official_prvs
    from inpaintzoo.official.api import model_from_weights

    states, meta = official["states"], official["meta"]
    for name, spec in meta["files"].items():
        ((net_key, network),) = spec["networks"].items()
        optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)]).state_dict()
        torch.save(
            {**spec["extra"], net_key: states[network], f"optimizer_{name[0].upper()}": optimizer},
            tmp_path / name,
        )
    weights = read_official_prvs(tmp_path)
    assert set(weights.state_dicts) == {"generator", "edge_discriminator"}
    model = model_from_weights(weights)
    assert model.weights_source == f"official weights ({weights.sha256})"
    _check_generator(model.generator, official)
    data = official["data"]
    image, mask = data["inputs"]["image"].float() / 255, data["inputs"]["mask"].float()
    with torch.no_grad():
        out = model.inpaint(image, mask, edge=data["inputs"]["edge"].float())
    assert _max_diff(out["output"], data["outputs"]["g_output"], "inpaint") <= TOL


# ----------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_full_size_forward_backward_at_smallest_size():
    torch.manual_seed(0)
    model = zoo.create_model("prvs", variant="full", perceptual_backbone="off")
    # batch 2: the 1x1 bottleneck's BatchNorm needs more than one value per channel (as
    # officially)
    b = model.prepare_batch(embedded_batch(n=2, size=256, seed=0))
    image, mask, edge = b["image"], b["mask"], b["edge"]
    out = model.generator(image * (1 - mask), edge * (1 - mask), mask)
    assert out["output"].shape == (2, 3, 256, 256)
    terms = model.generator_losses(b, out)
    sum(terms.values()).backward()
    assert all(torch.isfinite(v) for v in terms.values())
    assert model.generator.encoder[0].edge_conv.weight.grad.abs().sum() > 0
