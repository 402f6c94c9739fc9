"""RFR-Net's own facts: layer fingerprint, component counts, shapes, the knowledge-consistent
attention on a hand-computed case, losses, the fine-tune stage, official-weights parity.

The registry-wide behaviour (counts, config = recipe, CLI, hole independence, round trip,
predictor, export, learning) is in tests/test_contract.py. Full-size nets live on the meta
device except in the parity and slow tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo import zoo
from inpaintzoo.blocks import KnowledgeConsistentAttention, PartialConv2d
from inpaintzoo.nets.rfr import (
    OFFICIAL_PARAM_COUNTS,
    Bottleneck,
    RFRGenerator,
    build_rfr_nets,
    convert_official_state_dict,
)
from inpaintzoo.official.synthetic import fixture_state_dicts

FIXTURE = Path(__file__).parent / "fixtures" / "official" / "rfr"
TOL = 1e-5


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def full() -> RFRGenerator:
    with torch.device("meta"):
        return build_rfr_nets("full")["generator"]


def tiny(**options):
    options.setdefault("perceptual_backbone", "off")
    return zoo.create_model("rfr", variant="tiny", **options)


# ----------------------------------------------------------------------------- architecture
def _fingerprint(module: nn.Module) -> tuple:
    conv = module
    kind = "pconv" if isinstance(conv, PartialConv2d) else type(conv).__name__
    return (
        kind,
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size[0],
        conv.stride[0],
        conv.padding[0],
        conv.dilation[0],
        conv.bias is not None,
    )


def test_layer_fingerprint_follows_the_spec_table(full):
    g = full
    expected = {  # specs/rfr.md §1 (official modules/RFRNet.py, Attention.py)
        "stem1.conv": ("pconv", 3, 64, 7, 2, 3, 1, False),
        "stem2.conv": ("pconv", 64, 64, 7, 1, 3, 1, False),
        "recurrent_conv1": ("pconv", 64, 64, 7, 1, 3, 1, False),
        "recurrent_conv2": ("pconv", 64, 64, 7, 1, 3, 1, False),
        "reasoning.encoders.0.conv": ("Conv2d", 64, 128, 3, 2, 1, 1, False),
        "reasoning.encoders.1.conv": ("Conv2d", 128, 256, 3, 2, 1, 1, False),
        "reasoning.encoders.2.conv": ("Conv2d", 256, 512, 3, 2, 1, 1, False),
        "reasoning.encoders.3.conv": ("Conv2d", 512, 512, 3, 1, 2, 2, False),
        "reasoning.encoders.4.conv": ("Conv2d", 512, 512, 3, 1, 2, 2, False),
        "reasoning.encoders.5.conv": ("Conv2d", 512, 512, 3, 1, 2, 2, False),
        "reasoning.dec5.conv": ("Conv2d", 1024, 512, 3, 1, 2, 2, False),
        "reasoning.dec4.conv": ("Conv2d", 1024, 512, 3, 1, 2, 2, False),
        "reasoning.dec3.conv": ("ConvTranspose2d", 1024, 512, 4, 2, 1, 1, False),
        "reasoning.attention.combiner": ("Conv2d", 1024, 512, 1, 1, 0, 1, True),
        "reasoning.dec2.conv": ("ConvTranspose2d", 768, 256, 4, 2, 1, 1, False),
        "reasoning.dec1.conv": ("ConvTranspose2d", 384, 64, 4, 2, 1, 1, False),
        "up.conv": ("ConvTranspose2d", 64, 64, 4, 2, 1, 1, False),
        "tail_conv": ("pconv", 67, 32, 3, 1, 1, 1, False),
        "tail_bottleneck.conv1": ("Conv2d", 32, 8, 1, 1, 0, 1, False),
        "tail_bottleneck.conv2": ("Conv2d", 8, 8, 3, 1, 1, 1, False),
        "tail_bottleneck.conv3": ("Conv2d", 8, 32, 1, 1, 0, 1, False),
        "out": ("Conv2d", 64, 3, 3, 1, 1, 1, False),
    }
    modules = dict(g.named_modules())
    for name, fingerprint in expected.items():
        assert _fingerprint(modules[name]) == fingerprint, name
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) == len(expected)  # nothing else
    assert all(m.multi_channel for m in g.modules() if isinstance(m, PartialConv2d))
    norms = {n: m.num_features for n, m in modules.items() if isinstance(m, nn.BatchNorm2d)}
    assert norms["stem1.bn"] == norms["stem2.bn"] == norms["recurrent_norm"] == 64
    assert len(norms) == 2 + 1 + 6 + 5 + 1 + 3  # stem, recurrence, enc, dec, up, bottleneck
    # activations: ReLU in the reasoning encoder, LeakyReLU 0.2 in its decoder, 0.01 in the up
    assert isinstance(g.reasoning.encoders[0].act, nn.ReLU)
    assert g.reasoning.dec5.act.negative_slope == 0.2
    assert g.up.act.negative_slope == 0.01
    assert g.iterations == 6 and g.reasoning.attention.ratio.shape == (1,)


def test_component_counts(full):
    g = full
    assert count(g) == OFFICIAL_PARAM_COUNTS["generator"] == 31_224_065
    assert count(g.reasoning.attention) == 1 + 1024 * 512 + 512  # ratio, combiner
    assert count(g.tail_bottleneck) == 32 * 8 + 8 * 8 * 9 + 8 * 32 + 2 * (8 + 8 + 32)
    stem = 3 * 64 * 49 + 64 * 64 * 49 + 2 * 2 * 64
    assert count(g.stem1) + count(g.stem2) == stem
    recurrent = count(g.recurrent_conv1) + count(g.recurrent_conv2) + count(g.recurrent_norm)
    assert recurrent == 2 * 64 * 64 * 49 + 2 * 64  # shared by the six recurrences


def test_intermediate_shapes_at_256(full):
    shapes: dict[str, tuple] = {}

    def keep(name):
        def hook(module, args, out):
            shapes.setdefault(name, tuple((out[0] if isinstance(out, tuple) else out).shape))

        return hook

    g = full
    g.stem2.register_forward_hook(keep("stem"))
    for i, enc in enumerate(g.reasoning.encoders):
        enc.register_forward_hook(keep(f"enc{i + 1}"))
    g.reasoning.attention.register_forward_hook(keep("attention"))
    g.up.register_forward_hook(keep("up"))
    calls = []
    g.reasoning.register_forward_hook(lambda *a: calls.append(1))
    image = torch.empty(2, 3, 256, 256, device="meta")
    mask = torch.empty(2, 1, 256, 256, device="meta")
    out = g(image, mask)
    assert out.shape == (2, 3, 256, 256)
    assert shapes["stem"] == (2, 64, 128, 128)
    assert [shapes[f"enc{i}"][1:] for i in range(1, 7)] == [
        (128, 64, 64), (256, 32, 32), (512, 16, 16), (512, 16, 16), (512, 16, 16), (512, 16, 16)
    ]  # fmt: skip
    assert shapes["attention"] == (2, 512, 32, 32)  # KCA at H/8: 1024 positions
    assert shapes["up"] == (2, 64, 256, 256)
    assert len(calls) == 6


def test_sizes_must_be_multiples_of_16():
    g = RFRGenerator(channels=8)
    with pytest.raises(ValueError, match="multiples of 16"):
        g(torch.rand(1, 3, 40, 48), torch.zeros(1, 1, 40, 48))


def test_bottleneck_is_residual():
    block = Bottleneck(8, 2).eval()
    for conv in (block.conv1, block.conv2, block.conv3):
        nn.init.zeros_(conv.weight)
    x = torch.randn(1, 8, 5, 5)
    # zero convs: bn3(0) = BN bias/shift (0 with fresh stats) -> relu(x)
    torch.testing.assert_close(block(x), F.relu(x))


# ----------------------------------------------------------------------------- KCA block
def _kca_by_hand(f: list[list[float]], previous=None, ratio: float = 1.0):
    """A 1 x N feature map (channels per position) by the formulas of specs/rfr.md: keys
    normalised (+1e-7), dot products, 3x3 propagation over the query position, softmax over the
    source, blend with the previous scores, output = sum_q s(q, p) k_q."""
    n = len(f)
    keys = []
    for v in f:
        shifted = [c + 1e-7 for c in v]
        norm = math.sqrt(sum(c * c for c in shifted))
        keys.append([c / norm for c in shifted])
    sim = [[sum(a * b for a, b in zip(keys[q], f[p])) for p in range(n)] for q in range(n)]
    # 3x3 neighbourhood on a 1-row map: p-1, p, p+1 (zero outside)
    prop = [
        [sum(sim[q][j] for j in (p - 1, p, p + 1) if 0 <= j < n) for p in range(n)]
        for q in range(n)
    ]  # noqa: E501
    scores = [[0.0] * n for _ in range(n)]
    for p in range(n):
        z = sum(math.exp(prop[q][p]) for q in range(n))
        for q in range(n):
            scores[q][p] = math.exp(prop[q][p]) / z
    if previous is not None:
        prev_scores, prev_valid = previous
        r = abs(ratio) + 1e-7
        for q in range(n):
            for p in range(n):
                m = prev_valid[p]
                scores[q][p] = (prev_scores[q][p] * m + scores[q][p] * r) / (m + r)
    out = [
        [sum(scores[q][p] * keys[q][c] for q in range(n)) for c in range(len(f[0]))]
        for p in range(n)
    ]  # noqa: E501
    return scores, out


def test_kca_matches_the_formulas_on_a_hand_computed_case():
    kca = KnowledgeConsistentAttention(2)
    with torch.no_grad():
        kca.ratio.fill_(-0.5)  # |ratio| is used
    first = [[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]]
    second = [[0.5, 0.5], [-1.0, 0.2], [0.3, -0.4]]
    x1 = torch.tensor(first).t().reshape(1, 2, 1, 3)
    x2 = torch.tensor(second).t().reshape(1, 2, 1, 3)
    valid1 = torch.tensor([1.0, 0.0, 1.0]).view(1, 1, 1, 3)  # position 1 was a hole
    attended, state = kca.attend(x1, valid1)
    scores, out = _kca_by_hand(first)
    torch.testing.assert_close(state[0].view(3, 3), torch.tensor(scores), atol=1e-6, rtol=0)
    torch.testing.assert_close(attended.view(2, 3).t(), torch.tensor(out), atol=1e-6, rtol=0)
    assert torch.equal(state[1], valid1)
    # the next recurrence blends with these scores where the previous mask was valid
    attended2, state2 = kca.attend(x2, torch.ones(1, 1, 1, 3), state)
    scores2, out2 = _kca_by_hand(second, (scores, [1.0, 0.0, 1.0]), ratio=-0.5)
    torch.testing.assert_close(state2[0].view(3, 3), torch.tensor(scores2), atol=1e-6, rtol=0)
    torch.testing.assert_close(attended2.view(2, 3).t(), torch.tensor(out2), atol=1e-6, rtol=0)
    fresh, _ = _kca_by_hand(second)
    # at the previous hole the fresh scores are used alone; elsewhere they are blended 1 : 0.5
    torch.testing.assert_close(state2[0].view(3, 3)[:, 1], torch.tensor(fresh)[:, 1])
    blended = (torch.tensor(scores)[:, 0] + 0.5 * torch.tensor(fresh)[:, 0]) / 1.5
    torch.testing.assert_close(state2[0].view(3, 3)[:, 0], blended, atol=1e-6, rtol=0)
    # scores are distributions over the sources at every query position
    torch.testing.assert_close(state2[0].sum(1), torch.ones(1, 1, 3))


def test_kca_every_position_is_a_source_and_the_mask_only_gates_the_blending():
    """As the official code: hole positions are sources too (their features were partly filled
    by the recurrent partial convolutions); the valid mask never removes a source."""
    torch.manual_seed(0)
    kca = KnowledgeConsistentAttention(4)
    x = torch.randn(2, 4, 4, 4)
    hole = torch.ones(2, 1, 4, 4)
    hole[:, :, 1:3, 1:3] = 0
    _, (scores, _) = kca.attend(x, hole)
    _, (scores_valid, _) = kca.attend(x, torch.ones_like(hole))
    assert torch.equal(scores, scores_valid)  # the mask plays no part in a first recurrence
    assert (scores.view(2, 16, 16)[:, [5, 6, 9, 10]] > 0).all()  # hole sources get weight
    out, state = kca(x, hole)
    assert out.shape == x.shape and state[0].shape == (2, 16, 4, 4)
    # a mask at another resolution is resized (nearest) to the features, as officially
    _, (_, small) = kca.attend(x, F.interpolate(hole, scale_factor=4.0))
    assert torch.equal(small, hole)


def test_kca_batch_samples_are_independent():
    torch.manual_seed(1)
    kca = KnowledgeConsistentAttention(3)
    x, valid = torch.randn(3, 3, 5, 5), (torch.rand(3, 1, 5, 5) > 0.5).float()
    out, state = kca(x, valid)
    out2, _ = kca(x, valid, state)
    for i in range(3):
        one, s = kca(x[i : i + 1], valid[i : i + 1])
        one2, _ = kca(x[i : i + 1], valid[i : i + 1], s)
        torch.testing.assert_close(out[i : i + 1], one, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(out2[i : i + 1], one2, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- method
def test_iterations_is_an_option_that_changes_the_recurrence():
    torch.manual_seed(0)
    three = tiny(iterations=3).eval()
    six = tiny().eval()
    six.load_state_dict(three.state_dict())
    assert three.generator.iterations == 3 and six.generator.iterations == 6
    assert three.hparams["iterations"] == 3
    calls = []
    three.generator.reasoning.register_forward_hook(lambda *a: calls.append(1))
    image, mask = torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)
    mask[..., 16:40, 20:44] = 1
    a = three.inpaint(image, mask)["output"]
    assert len(calls) == 3
    assert not torch.allclose(a, six.inpaint(image, mask)["output"])
    with pytest.raises(ValueError, match="iterations"):
        tiny(iterations=0)


def test_losses_on_a_hand_computed_case():
    model = tiny()
    image = torch.zeros(1, 3, 4, 4)
    output = torch.full((1, 3, 4, 4), 0.5)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1  # left half is the hole
    terms = model.generator_losses(output, image, mask)
    assert set(terms) == {"hole", "valid", "tv"}  # VGG terms off
    assert float(terms["hole"]) == pytest.approx(0.25)  # mean over all elements
    assert float(terms["valid"]) == pytest.approx(0.25)
    # TV of output * hole: 12 of 36 horizontal neighbour pairs jump by 0.5 at the hole border
    assert float(terms["tv"]) == pytest.approx(0.5 * 12 / 36)
    assert model.weights == {
        "valid": 1.0,
        "hole": 6.0,
        "perceptual": 0.05,
        "style": 120.0,
        "tv": 0.1,
    }


def test_finetune_freezes_every_batch_norm_and_restarts_the_optimizer():
    c = zoo.get_method_class("rfr").contract
    assert [(p.stage, p.batches, p.lr) for p in c.paper_schedule] == [
        ("train", 400_000, 2e-4),
        ("finetune", 200_000, 5e-5),
    ]
    assert c.stages["finetune"].fresh_optimizers and c.stages["finetune"].needs == ("generator",)
    model = tiny()
    model.resolve_schedule(6)
    assert [e["batches"] for e in model.schedule] == [4, 2]
    norms = model.frozen_batch_norms()
    assert len(norms) == 18
    model.on_train_batch_start(None, 0)
    assert model.current_stage() == "train" and all(bn.training for bn in norms)
    model.batches_seen = 4
    model.on_train_batch_start(None, 0)
    assert model.current_stage() == "finetune"
    assert not any(bn.training for bn in norms)
    assert model.generator.reasoning.encoders[0].conv.training  # only the norms are frozen
    assert model.stage_lr_factor() == pytest.approx(5e-5 / 2e-4)


# ----------------------------------------------------------------------------- official weights
@pytest.fixture(scope="module")
def official():
    meta = json.loads((FIXTURE / "keys.json").read_text())
    data = torch.load(FIXTURE / "parity.pt", weights_only=True)
    state = fixture_state_dicts(meta, overrides=meta["overrides"])["generator"]
    generator = build_rfr_nets("full")["generator"]
    generator.load_state_dict(convert_official_state_dict(state), strict=True)
    return {"meta": meta, "data": data, "state": state, "generator": generator.eval()}


def _max_diff(ours: torch.Tensor, theirs: torch.Tensor, name: str) -> float:
    assert ours.shape == theirs.shape, name
    diff = float((ours.double() - theirs.double()).abs().max())
    print(f"RFR-Net {name}: max |ours - official| = {diff:.2e}")
    return diff


def test_official_weights_reproduce_the_official_outputs(official):
    inputs, outputs = official["data"]["inputs"], official["data"]["outputs"]
    image, mask = inputs["image"].float() / 255, inputs["mask"].float()
    assert image.shape == (2, 3, 128, 128) and not torch.equal(mask[0], mask[1])
    with torch.no_grad():
        ours = official["generator"](image * (1 - mask), mask)
    assert _max_diff(ours, outputs["output"], "output") <= TOL


def test_conversion_is_by_name(official):
    state = official["state"]
    forward = convert_official_state_dict(state)
    backward = convert_official_state_dict(dict(reversed(list(state.items()))))
    assert forward.keys() == backward.keys()
    assert all(forward[k] is backward[k] for k in forward)
    assert forward["reasoning.attention.ratio"] is state["RFRModule.att.att.ratio"]
    assert forward["stem2.bn.running_var"] is state["bn20.running_var"]
    prefixed = convert_official_state_dict({f"module.{k}": v for k, v in state.items()})
    assert prefixed.keys() == forward.keys()


def test_official_reader_refuses_what_is_not_the_release(tmp_path):
    from inpaintzoo.methods.rfr import read_official_rfr
    from inpaintzoo.official import OfficialWeightsError

    with pytest.raises(FileNotFoundError):
        read_official_rfr(tmp_path / "absent.pth")
    with pytest.raises(OfficialWeightsError, match="0 .pth"):
        read_official_rfr(tmp_path)
    torch.save(
        {"n_iter": 1, "generator": {"ec_texture_1.conv.weight": torch.zeros(1)}}, tmp_path / "a.pth"
    )
    with pytest.raises(OfficialWeightsError, match="does not hold an RFRNet generator"):
        read_official_rfr(tmp_path / "a.pth")
    torch.save({"n_iter": 1, "optimizer_G": {}}, tmp_path / "b.pth")
    with pytest.raises(OfficialWeightsError, match="2 .pth"):  # which one?
        read_official_rfr(tmp_path)
    with pytest.raises(OfficialWeightsError, match="'generator' state dict"):
        read_official_rfr(tmp_path / "b.pth")
    smaller = {
        "Pconv2.weight": torch.zeros(64, 64, 5, 5),
        "RFRModule.att.combiner.weight": torch.zeros(1),
    }
    torch.save({"n_iter": 1, "generator": smaller}, tmp_path / "b.pth")
    with pytest.raises(OfficialWeightsError, match="RFRNet_Smaller_Hole"):
        read_official_rfr(tmp_path / "b.pth")
    extra = {"RFRModule.att.combiner.weight": torch.zeros(1), "RFRModule.att.other": torch.zeros(1)}
    torch.save({"generator": extra}, tmp_path / "b.pth")
    with pytest.raises(OfficialWeightsError, match="RFRModule.att.other"):
        read_official_rfr(tmp_path / "b.pth")


@pytest.mark.slow
def test_official_file_imports_through_the_reader(official, tmp_path):
    """The file save_ckpt writes ({"n_iter", "generator", "optimizer_G"}) -> read_official_rfr ->
    model_from_weights (checked, strict) -> the official outputs through ``inpaint``."""
    from inpaintzoo.methods.rfr import read_official_rfr
    from inpaintzoo.official.api import model_from_weights
    from inpaintzoo.official.synthetic import write_official_files

    meta = official["meta"]
    written = write_official_files(meta["files"], {"generator": official["state"]}, tmp_path)
    (name,) = written
    weights = read_official_rfr(tmp_path)  # the folder holds the one checkpoint
    assert weights.sources == {"generator": f"{name}['generator']"}
    model = model_from_weights(weights)
    assert model.weights_source == f"official weights ({weights.sha256})"
    inputs, outputs = official["data"]["inputs"], official["data"]["outputs"]
    image, mask = inputs["image"].float() / 255, inputs["mask"].float()
    out = model.inpaint(image, mask)
    assert _max_diff(out["output"], outputs["output"], "inpaint") <= TOL


# ----------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_full_size_forward_backward_at_the_smallest_size():
    torch.manual_seed(0)
    model = zoo.create_model("rfr", variant="full", perceptual_backbone="off")
    image, mask = torch.rand(2, 3, 64, 64), torch.zeros(2, 1, 64, 64)
    mask[0, :, 10:40, 12:50] = 1
    mask[1, :, 30:60, 0:20] = 1
    output = model.generator(image * (1 - mask), mask)
    terms = model.generator_losses(output, image, mask)
    sum(model.weights[k] * v for k, v in terms.items()).backward()
    grads = [p.grad for p in model.generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
