"""Official released weights: the importers reproduce the official code's outputs.

``tests/fixtures/official/<method>/`` was recorded by ``scripts/official_parity/record.py`` from
the official repositories: the official networks filled with the deterministic recipe of
``inpaintzoo.official.synthetic``, saved by the official save code, and run on fixed inputs.
Here the official-format files are regenerated from the committed key lists alone (no official
code), imported through ``inpaintzoo-import`` (in-process) / ``load_official``, and our networks
must give the official outputs (max |difference| <= 1e-5, eval mode). Then every kind of bad
file: another method's weights, swapped files, truncated, a pickle that carries code, missing,
extra or mis-shaped keys, and nothing may load half-way.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from inpaintzoo import zoo
from inpaintzoo.nets.edgeconnect import EdgeConnectDiscriminator, EdgeGenerator
from inpaintzoo.official import OfficialWeightsError, list_importers, load_official
from inpaintzoo.official.api import IMPORT_CHECKPOINT, IMPORT_MANIFEST, import_official
from inpaintzoo.official.importers import read_official
from inpaintzoo.official.synthetic import (
    state_dict_digest,
    synthetic_state_dict,
    write_official_files,
)
from inpaintzoo.predictor import Predictor

FIXTURES = Path(__file__).parent / "fixtures" / "official"
TOL = 1e-5


def max_diff(ours: torch.Tensor, official: torch.Tensor, name: str) -> float:
    assert ours.shape == official.shape, f"{name}: {tuple(ours.shape)} vs {tuple(official.shape)}"
    diff = float((ours.double() - official.double()).abs().max())
    print(f"{name}: max |ours - official| = {diff:.2e}")
    return diff


class Official:
    """One method's fixture: metadata, inputs/outputs, and the regenerated official files."""

    def __init__(self, method: str, folder: Path) -> None:
        root = FIXTURES / method
        self.method = method
        self.meta = json.loads((root / "keys.json").read_text())
        data = torch.load(root / "parity.pt", weights_only=True)
        self.inputs, self.outputs = data["inputs"], data["outputs"]
        self.states = {}
        for network, info in self.meta["networks"].items():
            state = synthetic_state_dict(info["keys"], self.meta["recipe"]["seed"])
            assert state_dict_digest(state) == info["digest"], (
                f"the recipe no longer reproduces the recorded {method} {network} weights (a "
                "PyTorch release with other random streams?): re-record the fixtures with "
                "scripts/official_parity/record.py"
            )
            self.states[network] = state
        self.folder = folder
        self.files = write_official_files(self.meta["files"], self.states, folder)

    @property
    def sha256(self) -> str:
        shas = {n: hashlib.sha256(p.read_bytes()).hexdigest() for n, p in self.files.items()}
        if len(shas) == 1:
            return next(iter(shas.values()))
        lines = sorted(f"{sha}  {name}\n" for name, sha in shas.items())
        return hashlib.sha256("".join(lines).encode()).hexdigest()


# ----------------------------------------------------------------------------- EdgeConnect
@pytest.fixture(scope="module")
def ec(tmp_path_factory) -> Official:
    return Official("edgeconnect", tmp_path_factory.mktemp("edgeconnect_official"))


@pytest.fixture(scope="module")
def ec_import(ec, tmp_path_factory) -> Path:
    """``inpaintzoo-import method=edgeconnect official=<folder> out=<dir>``, in process."""
    from inpaintzoo.cli.import_official import run_import

    out = tmp_path_factory.mktemp("edgeconnect_import") / "ec_places2"
    cfg = OmegaConf.create(
        {"method": "edgeconnect", "official": str(ec.folder), "out": str(out), "options": {}}
    )
    run_import(cfg)
    return out


@pytest.fixture(scope="module")
def ec_model(ec_import):
    return Predictor.from_file(ec_import).model


def _ec_inputs(ec: Official):
    i = ec.inputs
    return i["image"].float() / 255, i["mask"].float(), i["edge"].float(), i["gray"]


def test_importers_cover_the_methods_with_pytorch_releases(tmp_path):
    from inpaintzoo import zoo
    from inpaintzoo.official import read_official

    declared = {
        name
        for name in zoo.list_models(kind="learned")
        if zoo.get_method_class(name).contract.official_reader is not None
    }
    assert {"csa", "lbam", "medfe", "prvs", "rfr", "shiftnet"} <= declared
    assert list_importers() == sorted(declared | {"ctsdg", "edgeconnect", "structureflow"})
    # a contract's reader is what read_official (and so inpaintzoo-import) runs for its method
    with pytest.raises(OfficialWeightsError, match="0 .pth"):
        read_official("rfr", tmp_path)
    with pytest.raises(ValueError, match="importer for 'glcic'; available: csa"):
        read_official("glcic", tmp_path)


def test_edgeconnect_generators_match_official(ec, ec_model):
    image, mask, edge, gray = _ec_inputs(ec)
    out = ec.outputs
    with torch.no_grad():
        g1 = ec_model.edge_generator(ec_model.edge_input(gray, edge, mask))
        assert max_diff(g1, out["g1_edges"], "EdgeConnect G1") <= TOL
        for path, edges in (
            ("raw_edges", out["g1_edges"]),
            ("composite_edges", out["g1_edges"] * mask + edge * (1 - mask)),
        ):
            g2 = ec_model.inpaint_generator(ec_model.inpaint_input(image, edges, mask))
            assert max_diff(g2, out[f"g2_output_{path}"], f"EdgeConnect G2 ({path})") <= TOL


def test_edgeconnect_discriminators_match_official_every_feature_map(ec, ec_model):
    i, out = ec.inputs, ec.outputs
    with torch.no_grad():
        d1_logits, d1 = ec_model.edge_discriminator(
            torch.cat([i["gray64"], i["edge64"].float()], dim=1)
        )
        d2_logits, d2 = ec_model.inpaint_discriminator(i["image64"].float() / 255)
    for tag, logits, feats in (("d1", d1_logits, d1), ("d2", d2_logits, d2)):
        assert len(feats) == 5
        for k, feat in enumerate(feats, start=1):
            name = f"EdgeConnect {tag.upper()} conv{k}"
            assert max_diff(feat, out[f"{tag}_feature{k}"], name) <= TOL
        # the official nsgan discriminator applies the sigmoid; ours returns logits
        assert max_diff(torch.sigmoid(logits), out[f"{tag}_output"], f"{tag} sigmoid") <= TOL


def test_edgeconnect_official_inference_feeds_raw_edges(ec, ec_model, monkeypatch):
    """Official test.py gives G2 G1's raw output (no known-edge compositing): the importer sets
    inference_edges="raw"; "composite" reproduces the training/eval path. The Canny map is the
    fixture's (scikit-image) one: our batched kornia Canny differs by design."""
    image, mask, edge, _ = _ec_inputs(ec)
    assert ec_model.inference_edges == "raw"
    monkeypatch.setattr(ec_model, "edge_map", lambda gray, mask=None: edge)
    raw = ec_model.inpaint(image, mask)
    assert max_diff(raw["edge"], ec.outputs["g1_edges"], "raw edges") <= TOL
    assert max_diff(raw["output"], ec.outputs["g2_output_raw_edges"], "inpaint (raw)") <= TOL
    monkeypatch.setattr(ec_model, "inference_edges", "composite")
    comp = ec_model.inpaint(image, mask)
    expected = ec.outputs["g2_output_composite_edges"]
    assert max_diff(comp["output"], expected, "inpaint (composite)") <= TOL
    assert float((comp["output"] - raw["output"]).abs().max()) > 1e-3  # the setting matters


def test_import_writes_an_ordinary_checkpoint(ec, ec_import, ec_model):
    target = ec_import / IMPORT_CHECKPOINT
    ckpt = torch.load(target, map_location="cpu", weights_only=True)
    label = f"official weights ({ec.sha256})"
    assert ckpt["hyper_parameters"]["method"] == "edgeconnect"
    assert ckpt["hyper_parameters"]["inference_edges"] == "raw"
    assert ckpt["inpaintzoo"]["method"] == "edgeconnect"
    assert ckpt["inpaintzoo"]["weights_source"] == label
    assert sorted(ckpt["inpaintzoo"]["official"]["files"]) == sorted(ec.files)
    manifest = json.loads((ec_import / IMPORT_MANIFEST).read_text())
    assert manifest["sha256"] == ec.sha256
    # predict/eval take the folder; the label names the official weights
    predictor = Predictor.from_file(ec_import)
    assert predictor.label == f"edgeconnect, {label}"
    # zoo.load_checkpoint and fine-tuning (init_from) read it like any checkpoint
    from inpaintzoo.cli.train import init_weights_from

    fresh = zoo.create_model("edgeconnect", variant="full")
    init_weights_from(fresh, str(target))
    for name in ("edge_generator", "inpaint_generator", "inpaint_discriminator"):
        ours, loaded = getattr(fresh, name).state_dict(), getattr(ec_model, name).state_dict()
        assert all(torch.equal(ours[k], loaded[k]) for k in ours), name
    # a rerun on the same files is a no-op; other weights need overwrite=true
    mtime = target.stat().st_mtime_ns
    assert import_official("edgeconnect", ec.folder, ec_import) == target
    assert target.stat().st_mtime_ns == mtime
    (ec_import / IMPORT_MANIFEST).write_text(json.dumps({**manifest, "sha256": "0" * 64}))
    with pytest.raises(OfficialWeightsError, match="overwrite=true"):
        import_official("edgeconnect", ec.folder, ec_import)
    (ec_import / IMPORT_MANIFEST).write_text(json.dumps(manifest))


def test_evaluation_names_official_weights(ec, ec_import):
    from inpaintzoo.evaluation import EvalProtocol, evaluate

    predictor = Predictor.from_file(ec_import)
    result = evaluate(
        predictor,
        EvalProtocol(num_samples=2),
        checkpoint=ec_import,  # the import folder, as `methods=[edgeconnect:DIR]` passes it
        lpips="off",
        fid=False,
        batch_size=2,
    )
    assert result["label"] == f"edgeconnect, official weights ({ec.sha256})"
    assert result["checkpoint"]["path"] == str(ec_import / IMPORT_CHECKPOINT)


def test_edgeconnect_generators_alone_suffice(ec, tmp_path):
    for name in ("EdgeModel_gen.pth", "InpaintingModel_gen.pth"):
        (tmp_path / name).write_bytes(ec.files[name].read_bytes())
    weights = read_official("edgeconnect", tmp_path)
    assert set(weights.state_dicts) == {"edge_generator", "inpaint_generator"}
    assert any("EdgeModel_dis.pth absent" in note for note in weights.notes)


def _v0_spectral_norm(state: dict) -> dict:
    """A PyTorch < 1.0 spectral-norm state dict: no ``weight_v``, the normalised ``weight``
    stored instead (``weight_orig / (u^T W v)``)."""
    out = {}
    for key, value in state.items():
        if key.endswith(".weight_v"):
            continue
        out[key] = value
        if key.endswith(".weight_orig"):
            prefix = key[: -len(".weight_orig")]
            u, v = state[f"{prefix}.weight_u"], state[f"{prefix}.weight_v"]
            dim = 1 if prefix in ("decoder.0", "decoder.3") else 0
            mat = value.movedim(dim, 0).reshape(value.shape[dim], -1)
            out[f"{prefix}.weight"] = value / torch.dot(u, mat @ v)
    return out


def test_edgeconnect_legacy_files_load(ec, ec_model, tmp_path):
    """2019-era files: legacy (non-zip) serialisation, pre-1.0 spectral norm without
    ``weight_v``, a generator saved under nn.DataParallel (``module.`` keys)."""
    g1 = {f"module.{k}": v for k, v in _v0_spectral_norm(ec.states["edge_generator"]).items()}
    d1 = _v0_spectral_norm(ec.states["edge_discriminator"])
    assert not any(k.endswith("weight_v") for k in g1) and "conv1.0.weight" in d1
    states = {**ec.states, "edge_generator": g1, "edge_discriminator": d1}
    write_official_files(ec.meta["files"], states, tmp_path, legacy_format=True)
    weights = read_official("edgeconnect", tmp_path)
    g1_net, d1_net = EdgeGenerator(init=False).eval(), EdgeConnectDiscriminator(2, init=False)
    g1_net.load_state_dict(weights.state_dicts["edge_generator"])
    d1_net.load_state_dict(weights.state_dicts["edge_discriminator"])
    d1_net.eval()
    with torch.no_grad():
        for name, conv in g1_net.named_modules():
            if hasattr(conv, "parametrizations"):
                ref = ec_model.edge_generator.get_submodule(name).weight
                assert max_diff(conv.weight, ref, f"G1 {name} (v0 SN)") <= 1e-6
        _, feats = d1_net(torch.cat([ec.inputs["gray64"], ec.inputs["edge64"].float()], dim=1))
    for k, feat in enumerate(feats, start=1):
        assert max_diff(feat, ec.outputs[f"d1_feature{k}"], f"D1 conv{k} (v0 SN)") <= TOL


# ----------------------------------------------------------------------------- bad files
def _copy_folder(ec: Official, folder: Path, **replace: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, path in ec.files.items():
        (folder / name).write_bytes(replace.get(name.replace(".", "_"), path.read_bytes()))
    return folder


def _saved(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_discriminator_duplicate_keys_must_agree(ec, tmp_path):
    bad = dict(ec.states["edge_discriminator"])
    bad["features.0.weight_orig"] = bad["features.0.weight_orig"] + 1.0  # no longer conv1's
    folder = _copy_folder(ec, tmp_path, EdgeModel_dis_pth=_saved({"discriminator": bad}))
    with pytest.raises(OfficialWeightsError) as err:
        read_official("edgeconnect", folder)
    message = str(err.value)
    assert "EdgeModel_dis.pth" in message
    assert "'features.0.weight_orig'" in message and "'conv1.0.weight_orig'" in message


def test_swapped_and_foreign_files_are_refused(ec, tmp_path):
    g2 = ec.files["InpaintingModel_gen.pth"].read_bytes()
    folder = _copy_folder(ec, tmp_path / "swapped", EdgeModel_gen_pth=g2)
    with pytest.raises(OfficialWeightsError, match=r"EdgeModel_gen\.pth holds an EdgeConnect "):
        read_official("edgeconnect", folder)
    ctsdg_like = _saved({"n_iter": 1, "generator": {"ec_texture_1.conv.weight": torch.zeros(1)}})
    folder = _copy_folder(ec, tmp_path / "foreign", EdgeModel_gen_pth=ctsdg_like)
    with pytest.raises(OfficialWeightsError, match="CTSDG"):
        read_official("edgeconnect", folder)
    with pytest.raises(OfficialWeightsError, match="holds an EdgeConnect edge generator"):
        read_official("ctsdg", ec.files["EdgeModel_gen.pth"])
    with pytest.raises(OfficialWeightsError, match="give the CTSDG checkpoint file"):
        read_official("ctsdg", ec.folder)  # a folder of four .pth files
    with pytest.raises(OfficialWeightsError, match=r"lacks \*_net_s_gen\.pth"):
        read_official("structureflow", ec.folder)
    with pytest.raises(ValueError, match="no official-weights importer for 'deepfill_v2'"):
        read_official("deepfill_v2", ec.folder)


def test_truncated_file_is_refused_naming_it(ec, tmp_path):
    data = ec.files["InpaintingModel_gen.pth"].read_bytes()
    folder = _copy_folder(ec, tmp_path, InpaintingModel_gen_pth=data[: len(data) // 2])
    with pytest.raises(OfficialWeightsError, match=r"InpaintingModel_gen\.pth.*truncated"):
        read_official("edgeconnect", folder)


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # would create the marker file when unpickled


def test_pickle_carrying_code_is_refused_and_never_run(ec, tmp_path):
    marker = tmp_path / "code_ran"
    evil_file = tmp_path / "evil.pth"
    torch.save({"iteration": 0, "generator": _Payload(marker)}, evil_file)
    folder = _copy_folder(ec, tmp_path / "ec", EdgeModel_gen_pth=evil_file.read_bytes())
    with pytest.raises(OfficialWeightsError, match=r"refusing to load .*EdgeModel_gen\.pth"):
        read_official("edgeconnect", folder)
    assert not marker.exists()  # the payload never executed


def test_missing_extra_and_misshaped_keys_are_named_and_nothing_loads(ec, tmp_path, monkeypatch):
    g1 = dict(ec.states["edge_generator"])
    for suffix in ("weight_orig", "weight_u", "weight_v"):
        del g1[f"middle.3.conv_block.1.{suffix}"]
    g1["middle.9.conv_block.1.bias"] = torch.zeros(256)
    g2 = dict(ec.states["inpaint_generator"])
    g2["decoder.7.bias"] = torch.zeros(4)  # 3 output channels officially
    folder = _copy_folder(
        ec,
        tmp_path / "ec",
        EdgeModel_gen_pth=_saved({"iteration": 0, "generator": g1}),
        InpaintingModel_gen_pth=_saved({"iteration": 0, "generator": g2}),
    )
    calls = []
    original = torch.nn.Module.load_state_dict
    monkeypatch.setattr(
        torch.nn.Module,
        "load_state_dict",
        lambda self, *a, **k: calls.append(type(self).__name__) or original(self, *a, **k),
    )
    out = tmp_path / "out"
    with pytest.raises(OfficialWeightsError) as err:
        import_official("edgeconnect", folder, out)
    message = str(err.value)
    assert "EdgeModel_gen.pth" in message and "missing keys" in message
    assert "middle.3.conv_block.1.parametrizations.weight.original" in message
    assert "unexpected keys" in message and "middle.9.conv_block.1.bias" in message
    assert not calls, f"a network was loaded before every file was checked: {calls}"
    assert not (out / IMPORT_CHECKPOINT).exists()
    # the generator alone fixed: now the shape mismatch of the other file is named
    fixed = _copy_folder(
        ec, tmp_path / "ec2", InpaintingModel_gen_pth=_saved({"iteration": 0, "generator": g2})
    )
    with pytest.raises(OfficialWeightsError, match=r"decoder\.7\.bias: file \(4,\) vs network"):
        load_official("edgeconnect", fixed)
    assert not calls


# ----------------------------------------------------------------------------- CTSDG
@pytest.fixture(scope="module")
def ct(tmp_path_factory) -> Official:
    return Official("ctsdg", tmp_path_factory.mktemp("ctsdg_official"))


@pytest.fixture(scope="module")
def ct_model(ct):
    (file,) = ct.files.values()
    model = load_official("ctsdg", file)
    assert model.weights_source == f"official weights ({ct.sha256})"
    assert not model.training
    return model


def test_ctsdg_generator_matches_official_at_256(ct, ct_model):
    i, out = ct.inputs, ct.outputs
    image, hole = i["image"].float() / 255, i["mask"].float()
    assert image.shape[-1] == 256
    with torch.no_grad():
        ours = ct_model.generator(image, i["edge"].float(), i["gray"], hole)
    # the official network works in [-1, 1] (tanh): compare in its units
    assert max_diff(ours["output"] * 2 - 1, out["g_output"], "CTSDG G output") <= TOL
    proj = ours["projected_image"] * 2 - 1
    assert max_diff(proj, out["g_projected_image"], "CTSDG G projected image") <= TOL
    edge = ours["projected_edge"]
    assert max_diff(edge, out["g_projected_edge"], "CTSDG G projected edge") <= TOL


def test_ctsdg_discriminator_matches_official_at_256(ct, ct_model):
    i, out = ct.inputs, ct.outputs
    image, edge, gray = i["image"].float() / 255, i["edge"].float(), i["gray"]
    fake = (out["g_output"] + 1) / 2
    with torch.no_grad():
        for tag, img, real_edge in (("real", image, edge), ("fake", fake, None)):
            logits, edge_logits = ct_model.discriminator(img, gray, real_edge)
            assert max_diff(logits, out[f"d_{tag}_logits"], f"CTSDG D {tag} logits") <= TOL
            assert max_diff(torch.sigmoid(logits), out[f"d_{tag}_pred"], f"D {tag}") <= TOL
            name = f"CTSDG D {tag} edge detector"
            assert max_diff(edge_logits, out[f"d_{tag}_edge_logits"], name) <= TOL
            assert max_diff(torch.sigmoid(edge_logits), out[f"d_{tag}_edge"], name) <= TOL


def test_ctsdg_maps_by_name_where_order_would_misplace(ct, ct_model):
    official = ct.states["generator"]
    ours = ct_model.generator.state_dict()
    by_order = list(zip(official.items(), ours.items(), strict=True))
    mismatched = sum(a.shape != b.shape for (_, a), (_, b) in by_order)
    print(f"CTSDG generator keys mapped by order: {mismatched} shape mismatches")
    assert mismatched > 0
    # the two Bi-GFF gammas have the same shape and sit in swapped order
    order = {ok: yk for (ok, _), (yk, _) in by_order}
    assert order["bigff.structure_gamma"] == "bigff.texture_gamma"
    gammas = ("structure_gamma", "texture_gamma")
    assert official["bigff.structure_gamma"] != official["bigff.texture_gamma"]
    for name in gammas:
        assert torch.equal(getattr(ct_model.generator.bigff, name), official[f"bigff.{name}"])
    # BatchNorm running statistics are carried over
    for key in ("ec_texture_2.bn.running_mean", "dc_structure_1.bn.running_var"):
        level = key.replace("ec_texture_2", "texture_encoder.levels.1")
        level = level.replace("dc_structure_1", "structure_decoder.stages.dc_1")
        assert torch.equal(ours[level], official[key])


# ----------------------------------------------------------------------------- StructureFlow
@pytest.fixture(scope="module")
def sf(tmp_path_factory) -> Official:
    return Official("structureflow", tmp_path_factory.mktemp("structureflow_official"))


@pytest.fixture(scope="module")
def sf_model(sf):
    model = load_official("structureflow", sf.folder)
    assert model.weights_source == f"official weights ({sf.sha256})"
    return model


def test_structureflow_generators_match_official(sf, sf_model):
    i, out = sf.inputs, sf.outputs
    image, smooth, hole = i["image"].float() / 255, i["smooth"].float() / 255, i["mask"].float()
    with torch.no_grad():
        gs = sf_model.structure_generator(image, smooth, hole)
        assert max_diff(gs * 2 - 1, out["gs_output"], "StructureFlow G_s") <= TOL
        # G_t on the official 7-channel input (official units throughout)
        official_in = torch.cat([(image * 2 - 1) * (1 - hole), out["gs_output"], hole], dim=1)
        maps = sf_model.texture_generator.forward_features(official_in)
        assert max_diff(maps["out"], out["gt_output"], "StructureFlow G_t") <= TOL
        assert max_diff(maps["flow"], out["gt_flow"], "StructureFlow G_t flow") <= TOL
        # through our [0, 1] interface: the structure image's round trip to [0, 1] changes its
        # last bit, which the flow column amplifies to ~1e-5 pixels of flow (documented)
        gt, flow = sf_model.texture_generator(image, (out["gs_output"] + 1) / 2, hole)
        assert max_diff(gt * 2 - 1, out["gt_output"], "StructureFlow G_t ([0,1] API)") <= TOL
        assert max_diff(flow, out["gt_flow"], "G_t flow ([0,1] API)") <= 1e-4


def test_structureflow_discriminator_matches_official(sf, sf_model):
    i, out = sf.inputs, sf.outputs
    with torch.no_grad():
        for tag, img in (("real", i["image"].float() / 255), ("fake", (out["gt_output"] + 1) / 2)):
            scale1, scale2 = sf_model.texture_discriminator(img)
            assert max_diff(scale1, out[f"d_{tag}_scale1"], f"StructureFlow D {tag} 1") <= TOL
            assert max_diff(scale2, out[f"d_{tag}_scale2"], f"StructureFlow D {tag} 2") <= TOL


def test_structureflow_picks_latest_else_highest_iteration(tmp_path):
    from inpaintzoo.official.importers import _pick

    for name in ("100_net_f_gen.pth", "2000_net_f_gen.pth", "300_net_f_gen.pth"):
        (tmp_path / name).touch()
    assert _pick(tmp_path, "f_gen").name == "2000_net_f_gen.pth"
    (tmp_path / "latest_net_f_gen.pth").touch()
    assert _pick(tmp_path, "f_gen").name == "latest_net_f_gen.pth"
    assert _pick(tmp_path, "s_gen") is None
