"""CSA's own facts: the networks against specs/csa.md §3-§7 (layer fingerprints, component
counts, shapes), the coherent semantic attention layer against a written-out reference, the
losses (consistency loss on hand-computed inputs, the three official-code behaviours behind their
options), the D-then-G order, the schedule, and the official-weights importer against outputs
recorded from the official code (tests/fixtures/official/csa, scripts/official_parity/csa.py).
The registry-wide contract tests (tests/test_contract.py) cover counts, CLI, learning,
checkpoints, predictor and export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import embedded_batch
from inpaintzoo import zoo
from inpaintzoo.blocks import CoherentSemanticAttention, csa_latent_mask
from inpaintzoo.blocks.coherent_attention import coherent_semantic_attention
from inpaintzoo.methods.csa import consistency_loss, read_official_csa
from inpaintzoo.nets.csa import HOLE_FILL, OFFICIAL_PARAM_COUNTS, build_csa_nets
from inpaintzoo.official import OfficialWeightsError
from inpaintzoo.official.synthetic import fixture_state_dicts, write_official_files

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "csa"

# ----------------------------------------------------------------------------- spec tables
# (type, in, out, kernel, stride, padding, dilation, bias), written from specs/csa.md §3, §4, §6
Row = tuple[str, int, int, int, int, int, int, bool]
W = [64, 128, 256, 512, 512, 512, 512, 512, 512]  # w_0 .. w_8


def _rough() -> list[Row]:
    down = [("Conv2d", 3, 64, 4, 2, 1, 1, True)]
    down += [("Conv2d", W[i - 1], W[i], 4, 2, 1, 1, True) for i in range(1, 8)]
    up = [("ConvTranspose2d", 128, 3, 4, 2, 1, 1, True)]
    up += [("ConvTranspose2d", 2 * W[i], W[i - 1], 4, 2, 1, 1, True) for i in range(1, 7)]
    up.append(("ConvTranspose2d", 512, 512, 4, 2, 1, 1, True))
    return down + up


def _refine() -> list[Row]:
    rows: list[Row] = [("Conv2d", 6, 64, 3, 1, 1, 1, True)]
    for d in range(1, 8):
        outer, inner = W[d - 1], W[d]
        rows += [
            ("Conv2d", outer, outer, 4, 2, 3, 2, True),  # dilated halving conv
            ("Conv2d", outer, inner, 3, 1, 1, 1, True),
            ("ConvTranspose2d", 2 * inner, outer, 3, 1, 1, 1, True),
            ("ConvTranspose2d", outer, outer, 4, 2, 1, 1, True),
        ]
    rows += [
        ("Conv2d", 512, 512, 4, 2, 3, 2, True),
        ("ConvTranspose2d", 512, 512, 4, 2, 1, 1, True),
    ]
    rows.append(("ConvTranspose2d", 128, 3, 3, 1, 1, 1, True))
    return rows


SPEC = {
    "rough_generator": _rough(),
    "refine_generator": _refine(),
    "discriminator": [
        ("Conv2d", 3, 64, 4, 2, 1, 1, True),
        ("Conv2d", 64, 128, 4, 2, 1, 1, True),
        ("Conv2d", 128, 256, 4, 2, 1, 1, True),
        ("Conv2d", 256, 512, 4, 1, 1, 1, True),
        ("Conv2d", 512, 1, 4, 1, 1, 1, True),
    ],
    "feature_discriminator": [
        ("Conv2d", 256, 512, 4, 2, 1, 1, True),
        ("Conv2d", 512, 512, 4, 2, 1, 1, True),
        ("Conv2d", 512, 512, 4, 2, 1, 1, True),
    ],
}
#: instance norms per network: (affine, not affine)
NORMS = {
    "rough_generator": (13, 0),  # down levels 1-6, up levels 1-7
    "refine_generator": (29, 0),  # 4 per level 1-7, 1 innermost
    "discriminator": (3, 0),
    "feature_discriminator": (0, 1),
}


def _fingerprint(net: nn.Module) -> list[Row]:
    rows = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
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
                )
            )
    return rows


@pytest.fixture(scope="module")
def full():
    with torch.device("meta"):
        return build_csa_nets("full")


@pytest.mark.parametrize("name", list(SPEC))
def test_layer_fingerprints_follow_the_spec(full, name):
    assert _fingerprint(full[name]) == SPEC[name]
    norms = [m for m in full[name].modules() if isinstance(m, nn.InstanceNorm2d)]
    assert (sum(m.affine for m in norms), sum(not m.affine for m in norms)) == NORMS[name]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in full[name].modules())


def test_component_counts(full):
    counts = {k: sum(p.numel() for p in v.parameters()) for k, v in full.items()}
    assert counts == OFFICIAL_PARAM_COUNTS
    g = full["refine_generator"]
    per_level = [sum(p.numel() for p in level.parameters()) for level in g.levels]
    # level 3 (the CSA level, 256 -> 512) = 4x4 dilated 256->256, 3x3 256->512, convT3 1024->256,
    # convT4 256->256, four affine IN (256, 512, 256, 256)
    assert per_level[2] == (
        256 * 256 * 16
        + 256
        + 256 * 512 * 9
        + 512
        + 1024 * 256 * 9
        + 256
        + 256 * 256 * 16
        + 256
        + 2 * (256 + 512 + 256 + 256)
    )
    assert per_level[7] == 2 * (512 * 512 * 16 + 512) + 2 * 512  # innermost
    assert sum(per_level) + 6 * 64 * 9 + 64 + 128 * 3 * 9 + 3 == counts["refine_generator"]


def test_shapes_at_the_training_size(full):
    with torch.device("meta"):
        image, mask = torch.rand(1, 3, 256, 256), torch.zeros(1, 1, 256, 256)
        assert full["rough_generator"](image, mask).shape == (1, 3, 256, 256)
        assert full["discriminator"](image).shape == (1, 1, 30, 30)
        # VGG16 pool3 of a 256 px image is 256 @ 32x32 -> 512 @ 4x4
        assert full["feature_discriminator"](torch.rand(1, 256, 32, 32)).shape == (1, 512, 4, 4)
        assert full["refine_generator"].latent_hole(mask).shape == (1, 1, 32, 32)


def test_tiny_shapes_and_the_csa_level():
    nets = build_csa_nets("tiny")
    batch = embedded_batch(n=2, size=64, seed=1)
    image, mask = batch["image"], batch["mask"]
    coarse = nets["rough_generator"](image, mask)
    feats = nets["refine_generator"].features(coarse, image, mask)
    assert coarse.shape == feats["output"].shape == (2, 3, 64, 64)
    assert feats["csa"].shape == feats["decoder"].shape == (2, 128, 8, 8)
    assert feats["hole"].shape == (2, 1, 8, 8) and feats["hole"].dtype == torch.bool
    with pytest.raises(ValueError, match="divisible by 64"):
        nets["rough_generator"](torch.rand(1, 3, 48, 48), torch.zeros(1, 1, 48, 48))


def test_masks_are_per_sample():
    torch.manual_seed(0)
    model = zoo.create_model("csa", variant="tiny", perceptual_backbone="off").eval()
    batch = embedded_batch(n=3, size=64, seed=5)
    image, mask = batch["image"], batch["mask"]
    together = model.inpaint(image, mask)["output"]
    for b in range(3):
        alone = model.inpaint(image[b : b + 1], mask[b : b + 1])["output"]
        torch.testing.assert_close(alone[0], together[b], atol=1e-5, rtol=0)


def test_rough_input_fills_the_hole_with_the_imagenet_mean():
    net = build_csa_nets("tiny")["rough_generator"]
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 8:24, 8:40] = 1
    x = net.network_input(image, mask)
    assert torch.allclose(x[0, :, 10, 10], torch.tensor(HOLE_FILL))
    assert torch.allclose(x[0, :, 40, 40], image[0, :, 40, 40] * 2 - 1)
    refine = build_csa_nets("tiny")["refine_generator"]
    coarse = torch.rand(1, 3, 64, 64)
    syn_masked = refine.network_input(coarse, image, mask)
    assert torch.allclose(syn_masked[0, :3, 10, 10], coarse[0, :, 10, 10] * 2 - 1)
    assert torch.equal(syn_masked[0, 3:, 10, 10], torch.zeros(3))  # official: hole zeroed


# ----------------------------------------------------------------------------- CSA layer
def reference_csa(feature: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """The spec's CSA (specs/csa.md §5) for ONE sample, written out position by position:
    returns the attention (N, N)."""
    c, h, w = feature.shape
    f = [feature[:, i, j] for i in range(h) for j in range(w)]
    flags = [bool(hole[i, j]) for i in range(h) for j in range(w)]
    known = [k for k, flag in enumerate(flags) if not flag]
    n = len(f)
    attention = torch.zeros(n, n, dtype=feature.dtype)
    previous_m, previous_row = None, None
    for p in range(n):  # raster order
        if not flags[p]:
            attention[p, p] = 1.0
            continue
        scores = [float(f[p] @ (f[k] / (f[k].norm() + 1e-8))) for k in known]
        best = max(range(len(known)), key=lambda i: (scores[i], -i))  # first maximum
        v, source = scores[best], known[best]
        row = torch.zeros(n, dtype=feature.dtype)
        if previous_m is None:
            m = f[source].clone()
            row[source] = 1.0
        else:
            d = float((f[p] / (f[p].norm() + 1e-8)) @ previous_m)
            m = d / (d + v) * previous_m + v / (d + v) * f[source]
            row = d / (d + v) * previous_row
            row[source] += v / (d + v)
        attention[p] = row
        previous_m, previous_row = m, row
    return attention


def _holes(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    hole = torch.rand(b, 1, h, w, generator=gen) < 0.4
    hole[0, 0, 1:4, 2:5] = True  # a compact block too
    return hole


def test_csa_attention_matches_the_written_out_reference_per_sample():
    gen = torch.Generator().manual_seed(0)
    feature = torch.randn(3, 6, 5, 6, generator=gen, dtype=torch.float64)
    hole = _holes(3, 5, 6, seed=1)
    out, attention = coherent_semantic_attention(feature, hole, return_attention=True)
    for b in range(3):
        expected = reference_csa(feature[b], hole[b, 0])
        torch.testing.assert_close(attention[b], expected, rtol=1e-10, atol=1e-12)
        flat = feature[b].flatten(1).t()
        torch.testing.assert_close(out[b].flatten(1).t(), expected @ flat, rtol=1e-10, atol=1e-12)
        alone = coherent_semantic_attention(feature[b : b + 1], hole[b : b + 1])
        torch.testing.assert_close(alone[0], out[b], rtol=0, atol=0)


def test_csa_defining_properties():
    gen = torch.Generator().manual_seed(3)
    feature = torch.randn(2, 8, 6, 6, generator=gen, dtype=torch.float64)
    hole = _holes(2, 6, 6, seed=4)
    out, attention = coherent_semantic_attention(feature, hole, return_attention=True)
    for b in range(2):
        flags = hole[b].flatten()
        known = ~flags
        eye = torch.eye(36, dtype=torch.float64)
        # known positions: one-hot on themselves, features unchanged
        assert torch.equal(attention[b][known], eye[known])
        assert torch.equal(out[b].flatten(1)[:, known], feature[b].flatten(1)[:, known])
        rows = attention[b][flags]
        # hole positions attend only to known positions; each row is an affine combination
        assert torch.all(rows[:, flags] == 0)
        torch.testing.assert_close(rows.sum(1), torch.ones(len(rows), dtype=torch.float64))
        # the first hole position (raster order) copies its best known match: one-hot
        assert torch.count_nonzero(rows[0]) == 1 and float(rows[0].max()) == 1.0
    # a sample without a known position is left unchanged
    all_hole = torch.ones(1, 1, 6, 6, dtype=torch.bool)
    assert torch.equal(coherent_semantic_attention(feature[:1], all_hole), feature[:1])


def test_csa_gradient_is_the_official_redistribution():
    gen = torch.Generator().manual_seed(5)
    feature = torch.randn(2, 4, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    hole = _holes(2, 4, 4, seed=6)
    csa = CoherentSemanticAttention(triple_weight=0.7)
    out = csa(feature, hole)
    grad_out = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad(out, feature, grad_out)
    _, attention = coherent_semantic_attention(feature.detach(), hole, return_attention=True)
    g = grad_out.flatten(2).transpose(1, 2)
    expected = g + 0.7 * attention.transpose(1, 2) @ g  # CSAFunction.backward
    torch.testing.assert_close(grad.flatten(2).transpose(1, 2), expected)


def test_latent_mask_by_hand():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :2] = 1  # top-left 2x2 hole
    # one 4x4 s2 p1 conv of 1/16: output (0,0) covers rows/cols -1..2 -> 4 hole pixels = 4/16
    one = csa_latent_mask(mask, levels=1, threshold=3 / 16)
    assert one.tolist() == [[[[True, False], [False, False]]]]
    assert not csa_latent_mask(mask, levels=1).any()  # 4/16 is not > 5/16
    assert csa_latent_mask(torch.ones(1, 1, 64, 64)).shape == (1, 1, 8, 8)


# ----------------------------------------------------------------------------- losses
def test_consistency_loss_by_hand():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=True)  # (1, 1, 2, 2)
    target = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    hole = torch.tensor([[[[True, False], [False, True]]]])
    paper = consistency_loss((f,), target, hole)
    assert float(paper.detach()) == pytest.approx((1.0**2 + 3.0**2) / 4)
    (grad,) = torch.autograd.grad(paper, f)
    assert grad.tolist() == [[[[0.5, 0.0], [0.0, 1.5]]]]
    official = consistency_loss((f, f), target, hole, official=True)
    # MSE(f * m, t): (1 + 1 + 1 + 9) / 4 per feature, twice; no gradient (Variable(loss.data))
    assert float(official) == pytest.approx(2 * 12 / 4)
    assert not official.requires_grad
    with pytest.raises(ValueError, match="512 channels"):
        consistency_loss((torch.zeros(1, 3, 2, 2),), target, hole)


class StubVGG(nn.Module):
    """VGG16 stand-in for the loss wiring: pool3 (256 ch) and relu4_3 (as wide as the tiny CSA
    level) at H/8, from fixed random convs."""

    def __init__(self, width: int) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.pool3 = nn.Conv2d(3, 256, 8, stride=8)
        self.relu4_3 = nn.Conv2d(3, width, 8, stride=8)
        self.requires_grad_(False)

    def forward(self, x):
        return {"pool3": self.pool3(x), "relu4_3": self.relu4_3(x)}


def _captured_batch(**options):
    """One training batch of the tiny model with the stub VGG; returns the module and the
    ``optimize`` calls (nothing is stepped)."""
    torch.manual_seed(0)
    model = zoo.create_model("csa", variant="tiny", perceptual_backbone="random", **options)
    model._vgg_holder.append(StubVGG(model.refine_generator.widths[3]))
    calls = []
    model.optimize = lambda losses, names, terms=None: calls.append((losses, names, terms))
    batch = embedded_batch(n=2, size=64, seed=2)
    logs = model.training_batch(batch)
    return model, calls, logs


def _grads(loss, module):
    if not loss.requires_grad:
        return 0.0
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return sum(0.0 if g is None else float(g.abs().sum()) for g in grads)


def test_training_order_weights_and_gradients():
    model, calls, logs = _captured_batch()
    names = [c[1] for c in calls]
    assert names == [
        "discriminator",
        "feature_discriminator",
        ["rough_generator", "refine_generator"],
    ]
    losses, _, terms = calls[-1]
    assert set(terms) == {"l1", "rough_l1", "adversarial", "feature_adversarial", "consistency"}
    weights = {"l1": 100, "rough_l1": 100, "adversarial": 0.2, "feature_adversarial": 0.2,
               "consistency": 1.0}  # fmt: skip
    expected = sum(weights[k] * terms[k] for k in terms)
    torch.testing.assert_close(losses["g"], expected)
    # every term trains the refinement net except rough_l1; the rough net learns only from its
    # own L1 (the official refinement input is fake_P.data)
    for term in ("l1", "adversarial", "feature_adversarial", "consistency"):
        assert _grads(terms[term], model.refine_generator) > 0, term
        assert _grads(terms[term], model.rough_generator) == 0, term
    assert _grads(terms["rough_l1"], model.rough_generator) > 0
    assert float(logs["d"]) == pytest.approx(float(calls[0][0]["discriminator"].detach()))


def test_official_consistency_and_feature_gan_train_nothing():
    model, calls, _ = _captured_batch(official_consistency=True, official_feature_gan=True)
    terms = calls[-1][2]
    assert not terms["consistency"].requires_grad
    assert _grads(terms["feature_adversarial"], model.refine_generator) == 0
    assert _grads(terms["l1"], model.refine_generator) > 0
    assert any("official_consistency" in n for n in model.run_notes())


def test_official_fixed_flags_reuse_the_first_mask():
    model = zoo.create_model("csa", variant="tiny", perceptual_backbone="off")
    first, second = torch.zeros(2, 1, 64, 64), torch.zeros(2, 1, 64, 64)
    first[..., 0:32, 0:32] = 1
    second[..., 32:64, 32:64] = 1
    assert model.csa_hole(first) is None  # default: flags per sample
    fixed = zoo.create_model(
        "csa", variant="tiny", perceptual_backbone="off", official_fixed_flags=True
    )
    a = fixed.csa_hole(first)
    b = fixed.csa_hole(second)
    assert torch.equal(b, a) and a.shape == (2, 1, 8, 8)
    assert torch.equal(a[0], fixed.refine_generator.latent_hole(first[:1])[0])
    with pytest.raises(ValueError, match="official_fixed_flags"):
        fixed.csa_hole(torch.zeros(1, 1, 128, 128))


def test_consistency_needs_a_512_channel_csa_level():
    model = zoo.create_model("csa", variant="tiny", perceptual_backbone="random")
    with pytest.raises(ValueError, match="consistency_weight=0"):
        model._build_vgg()


def test_paper_schedule_decays_linearly():
    model = zoo.create_model("csa", variant="tiny", perceptual_backbone="off")
    schedule = model.resolve_schedule(12)
    assert [(e["stage"], e["batches"]) for e in schedule] == [("constant", 2), ("decay", 10)]
    factors = []
    for seen in (0, 1, 2, 3, 11):
        model.batches_seen = seen
        factors.append(model.stage_lr_factor())
    assert factors[:2] == [1.0, 1.0]
    assert factors[2:] == pytest.approx([1 - 1 / 11, 1 - 2 / 11, 1 - 10 / 11])


# ----------------------------------------------------------------------------- official weights
@pytest.fixture(scope="module")
def official(tmp_path_factory):
    meta = json.loads((FIXTURE / "keys.json").read_text())
    data = np.load(FIXTURE / "parity.npz")
    states = fixture_state_dicts(meta)
    folder = tmp_path_factory.mktemp("csa_official")
    write_official_files(meta["files"], states, folder)
    return meta, data, folder


def _max_diff(ours: torch.Tensor, official: np.ndarray) -> float:
    official = torch.from_numpy(official)
    assert ours.shape == official.shape
    return float((ours.double() - official.double()).abs().max())


def test_official_weights_reproduce_the_official_outputs(official):
    """Rough network, both discriminators: max |ours - official| <= 1e-5. Refinement network:
    its CSA layer matches the official one to float32 rounding (~6e-7, another summation order
    in the search and the recurrence) and five normalised decoder levels amplify that to
    ~6e-5 on outputs of magnitude ~24 (recipe weights, no tanh): bound 1e-5 x max |official|."""
    meta, data, folder = official
    weights = read_official_csa(folder)
    assert sorted(weights.state_dicts) == sorted(OFFICIAL_PARAM_COUNTS)
    nets = build_csa_nets("full", init=False)
    for name, net in nets.items():
        net.load_state_dict(weights.state_dicts[name], strict=True)
        net.eval()
    image = torch.from_numpy(data["input_image"]).float() / 255
    mask = torch.from_numpy(data["input_mask"]).float()
    masked = image * (1 - mask)
    with torch.no_grad():
        coarse = nets["rough_generator"](masked, mask)
        assert _max_diff(coarse * 2 - 1, data["output_rough_output"]) <= 1e-5
        feats = nets["refine_generator"].features(coarse, masked, mask)
        scale = float(np.abs(data["output_refine_output"]).max())
        assert _max_diff(feats["raw"], data["output_refine_output"]) <= 1e-5 * scale
        gen = torch.Generator().manual_seed(meta["seeds"]["target"])
        target = 0.5 * torch.randn(1, 512, 32, 32, generator=gen)
        values = [
            consistency_loss((feats[k],), target, feats["hole"], official=True)
            for k in ("csa", "decoder")
        ]
        np.testing.assert_allclose(values, data["output_consistency"], rtol=1e-5)
        d_fake = nets["discriminator"](feats["output"])
        assert _max_diff(d_fake, data["output_d_fake"]) <= 1e-5 * scale
        assert _max_diff(nets["discriminator"](image), data["output_d_real"]) <= 1e-5
        feature = torch.from_numpy(data["input_feature"])
        assert _max_diff(nets["feature_discriminator"](feature), data["output_f_output"]) <= 1e-5


def test_official_reader_refuses_bad_files(official, tmp_path):
    _, _, folder = official
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    shutil.copy(folder / "30_net_G.pth", swapped / "30_net_P.pth")
    shutil.copy(folder / "30_net_P.pth", swapped / "30_net_G.pth")
    with pytest.raises(OfficialWeightsError, match="swapped"):
        read_official_csa(swapped)
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(folder / "30_net_G.pth", partial / "30_net_G.pth")
    with pytest.raises(OfficialWeightsError, match="30_net_P.pth"):
        read_official_csa(partial)
    only_d = tmp_path / "only_d"
    only_d.mkdir()
    shutil.copy(folder / "30_net_G.pth", only_d / "30_net_G.pth")
    shutil.copy(folder / "30_net_D.pth", only_d / "30_net_P.pth")
    with pytest.raises(OfficialWeightsError, match="rough generator"):
        read_official_csa(only_d)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OfficialWeightsError, match="no <epoch>_net_G.pth"):
        read_official_csa(empty)
    weights = read_official_csa(folder / "30_net_G.pth")  # a file picks its epoch
    assert weights.sources["refine_generator"] == "30_net_G.pth" and len(weights.files) == 4


# ----------------------------------------------------------------------------- full size
@pytest.mark.slow
def test_full_size_forward_backward_at_256():
    """The full networks at the smallest legal size (256 px), one training batch of every term
    (VGG16 with random weights), batch 2 with different masks."""
    torch.manual_seed(0)
    model = zoo.create_model("csa", variant="full", perceptual_backbone="random")
    calls = []
    model.optimize = lambda losses, names, terms=None: calls.append((losses, names, terms))
    image = torch.rand(2, 3, 256, 256)
    mask = torch.zeros(2, 1, 256, 256)
    mask[0, :, 64:192, 64:192] = 1
    mask[1, :, 20:100, 150:240] = 1
    model.training_batch({"image": image, "mask": mask})
    losses, _, terms = calls[-1]
    assert set(terms) == {"l1", "rough_l1", "adversarial", "feature_adversarial", "consistency"}
    losses["g"].backward()
    assert all(p.grad is not None for p in model.refine_generator.parameters())
    with torch.no_grad():
        feats = model.refine_generator.features(image, image, mask)
    assert feats["csa"].shape == feats["decoder"].shape == (2, 512, 32, 32)
    assert feats["output"].shape == (2, 3, 256, 256) and torch.isfinite(feats["output"]).all()
