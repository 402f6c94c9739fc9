"""Record official outputs for the official-weights parity tests (run by hand, not in CI).

    python scripts/official_parity/record.py edgeconnect /path/to/edge-connect
    python scripts/official_parity/record.py ctsdg /path/to/CTSDG
    python scripts/official_parity/record.py structureflow /path/to/StructureFlow

The path is a checkout of the official repository (knazeri/edge-connect, xiefan-guo/ctsdg,
RenYurui/StructureFlow); this script fetches nothing. For the method given it

1. builds the official networks with the official classes (under the run-time shims of
   ``compat.py``: no official file is modified);
2. fills them with the deterministic recipe of :mod:`inpaintzoo.official.synthetic` (every key,
   BatchNorm statistics and spectral-norm ``u``/``v`` included) through the official
   ``load_state_dict``;
3. saves them with the official save code (EdgeConnect ``BaseModel.save``, StructureFlow
   ``BaseModel.save``; CTSDG's ``trainer.py`` writes its checkpoint inline, so its dict
   ``{"n_iter", "generator", "discriminator"}`` is written the same way here), reloads them with
   the official load code, and checks that :func:`write_official_files` (what the tests use to
   regenerate the files without official code) writes the same content;
4. runs the official forward passes in eval mode on fixed inputs and writes
   ``<out>/<method>/keys.json`` (file layout, key lists with shapes in official order, the
   recipe and its digests, output statistics) and ``<out>/<method>/parity.pt`` (inputs and
   official outputs; tensors only).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compat  # noqa: E402
import fixed_inputs  # noqa: E402

from inpaintzoo.official.synthetic import (  # noqa: E402
    RECIPE,
    key_entries,
    state_dict_digest,
    synthetic_state_dict,
    write_official_files,
)

REPO = HERE.parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "official"


# ----------------------------------------------------------------------------- helpers
def sn_dims(module: torch.nn.Module) -> dict[str, int]:
    """Prefix -> matrix dim of every legacy spectral-norm hook (1 for transposed convs)."""
    from torch.nn.utils.spectral_norm import SpectralNorm

    dims = {}
    for name, sub in module.named_modules():
        for hook in sub._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm):
                dims[name] = int(hook.dim)
    return dims


def fill(module: torch.nn.Module) -> tuple[list[dict], OrderedDict]:
    """Recipe weights for ``module``'s own keys, loaded with the official ``load_state_dict``."""
    entries = key_entries(module.state_dict(), sn_dims(module))
    state = synthetic_state_dict(entries)
    module.load_state_dict(state, strict=True)
    return entries, state


def same_state(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def layout_of(folder: Path, networks_by_key: dict[str, dict[str | None, str]]) -> dict:
    """Describe the files the official code wrote (top-level keys, non-tensor entries)."""
    layout = {}
    for name, networks in networks_by_key.items():
        payload = torch.load(folder / name, map_location="cpu", weights_only=True)
        extra = {}
        if None not in networks:
            extra = {k: v for k, v in payload.items() if k not in networks}
            unknown = [k for k, v in extra.items() if not isinstance(v, int | float | str)]
            if unknown:
                raise RuntimeError(f"{name}: unexpected entries {unknown}")
        layout[name] = {"networks": {k or "": v for k, v in networks.items()}, "extra": extra}
    return layout


def check_writer(folder: Path, layout: dict, states: dict[str, dict]) -> None:
    """``write_official_files`` must reproduce what the official code wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        write_official_files(layout, states, tmp)
        for name in layout:
            ours = torch.load(Path(tmp) / name, map_location="cpu", weights_only=True)
            theirs = torch.load(folder / name, map_location="cpu", weights_only=True)
            if all(torch.is_tensor(v) for v in theirs.values()):
                ok = same_state(ours, theirs)
            else:
                ok = list(ours) == list(theirs) and all(
                    same_state(ours[k], v) if isinstance(v, dict) else ours[k] == v
                    for k, v in theirs.items()
                )
            if not ok:
                raise RuntimeError(f"write_official_files does not reproduce {name}")


def stats(outputs: dict[str, torch.Tensor]) -> dict[str, dict[str, Any]]:
    return {
        k: {
            "shape": list(v.shape),
            "min": round(float(v.min()), 6),
            "max": round(float(v.max()), 6),
            "std": round(float(v.float().std()), 6),
        }
        for k, v in outputs.items()
    }


def write_fixture(out: Path, meta: dict, inputs: dict, outputs: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta["outputs"] = stats(outputs)
    meta["environment"] = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }
    (out / "keys.json").write_text(json.dumps(meta, indent=1) + "\n")
    torch.save(
        {
            "inputs": {k: v.contiguous() for k, v in inputs.items()},
            "outputs": {k: v.contiguous() for k, v in outputs.items()},
        },
        out / "parity.pt",
    )
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 1e6:.2f} MB)")
    for key, value in meta["outputs"].items():
        print(f"  {key:28s} {value}")


def networks_meta(entries: dict[str, list], states: dict[str, dict], classes: dict) -> dict:
    return {
        net: {
            "official_class": classes[net],
            "digest": state_dict_digest(states[net]),
            "keys": entries[net],
        }
        for net in entries
    }


# ----------------------------------------------------------------------------- EdgeConnect
def record_edgeconnect(src: Path, out: Path) -> None:
    compat.install_numpy_aliases()
    compat.install_scipy_misc()
    compat.install_offline_vgg()
    sys.path.insert(0, str(src))
    from src.models import EdgeModel, InpaintingModel  # official

    def config(path: Path, mode: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(
            PATH=str(path), GPU=[0], GAN_LOSS="nsgan", LR=1e-4, D2G_LR=0.1, BETA1=0.0,
            BETA2=0.9, MODE=mode, L1_LOSS_WEIGHT=1, FM_LOSS_WEIGHT=10, STYLE_LOSS_WEIGHT=250,
            CONTENT_LOSS_WEIGHT=0.1, INPAINT_ADV_LOSS_WEIGHT=0.1,
        )  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        edge_model, inpaint_model = EdgeModel(config(folder, 1)), InpaintingModel(config(folder, 1))
        nets = {
            "edge_generator": edge_model.generator,
            "edge_discriminator": edge_model.discriminator,
            "inpaint_generator": inpaint_model.generator,
            "inpaint_discriminator": inpaint_model.discriminator,
        }
        entries, states = {}, {}
        for name, net in nets.items():
            entries[name], states[name] = fill(net)
        edge_model.save()  # official BaseModel.save: {iteration, generator} / {discriminator}
        inpaint_model.save()
        reloaded_edge, reloaded_inpaint = (
            EdgeModel(config(folder, 1)),
            InpaintingModel(config(folder, 1)),
        )
        reloaded_edge.load()  # official BaseModel.load (MODE 1 also loads discriminators)
        reloaded_inpaint.load()
        for name, net in {
            "edge_generator": reloaded_edge.generator,
            "edge_discriminator": reloaded_edge.discriminator,
            "inpaint_generator": reloaded_inpaint.generator,
            "inpaint_discriminator": reloaded_inpaint.discriminator,
        }.items():
            if not same_state(net.state_dict(), states[name]):
                raise RuntimeError(f"official load does not give back {name}")
        layout = layout_of(
            folder,
            {
                "EdgeModel_gen.pth": {"generator": "edge_generator"},
                "EdgeModel_dis.pth": {"discriminator": "edge_discriminator"},
                "InpaintingModel_gen.pth": {"generator": "inpaint_generator"},
                "InpaintingModel_dis.pth": {"discriminator": "inpaint_discriminator"},
            },
        )
        check_writer(folder, layout, states)

    inputs = fixed_inputs.edgeconnect_inputs()
    image, gray, edge, mask = (inputs[k] for k in ("image", "gray", "edge", "mask"))
    image = image.float() / 255.0
    edge, mask = edge.float(), mask.float()
    edge_model.eval()
    inpaint_model.eval()
    outputs = {}
    with torch.no_grad():
        # official test.py, model 3: G1's raw output feeds G2 (src/edge_connect.py test())
        edges_raw = edge_model(gray, edge, mask)
        outputs["g1_edges"] = edges_raw
        outputs["g2_output_raw_edges"] = inpaint_model(image, edges_raw, mask)
        # training / eval paths: the known region's edges composited in
        edges_comp = edges_raw * mask + edge * (1 - mask)
        outputs["g2_output_composite_edges"] = inpaint_model(image, edges_comp, mask)
        image64 = inputs["image64"].float() / 255.0
        d1_out, d1_feats = edge_model.discriminator(
            torch.cat([inputs["gray64"], inputs["edge64"].float()], dim=1)
        )
        d2_out, d2_feats = inpaint_model.discriminator(image64)
        outputs["d1_output"] = d1_out
        outputs["d2_output"] = d2_out
        for i, (f1, f2) in enumerate(zip(d1_feats, d2_feats, strict=True), start=1):
            outputs[f"d1_feature{i}"] = f1
            outputs[f"d2_feature{i}"] = f2
    meta = {
        "method": "edgeconnect",
        "official_repo": "knazeri/edge-connect",
        "recipe": RECIPE,
        "files": layout,
        "networks": networks_meta(
            entries,
            states,
            {
                "edge_generator": "src/networks.py EdgeGenerator(use_spectral_norm=True)",
                "edge_discriminator": "src/networks.py Discriminator(in_channels=2)",
                "inpaint_generator": "src/networks.py InpaintGenerator()",
                "inpaint_discriminator": "src/networks.py Discriminator(in_channels=3)",
            },
        ),
        "inputs": fixed_inputs.DESCRIPTION["edgeconnect"],
        "official_calls": {
            "g1_edges": "EdgeModel.forward(gray, edge, mask)",
            "g2_output_raw_edges": "InpaintingModel.forward(image, g1_edges, mask) (test.py)",
            "g2_output_composite_edges": "InpaintingModel.forward(image, g1*m + edge*(1-m), m)",
            "d1_*": "EdgeModel.discriminator(cat(gray64, edge64)): sigmoid output, conv1..conv5",
            "d2_*": "InpaintingModel.discriminator(image64)",
        },
    }
    write_fixture(out / "edgeconnect", meta, inputs, outputs)


# ----------------------------------------------------------------------------- CTSDG
def record_ctsdg(src: Path, out: Path) -> None:
    compat.install_offline_vgg()
    sys.path.insert(0, str(src))
    from models.discriminator.discriminator import Discriminator  # official
    from models.generator.generator import Generator  # official

    generator = Generator(image_in_channels=3, edge_in_channels=2, out_channels=3)
    discriminator = Discriminator(image_in_channels=3, edge_in_channels=2)
    entries, states = {}, {}
    entries["generator"], states["generator"] = fill(generator)
    entries["discriminator"], states["discriminator"] = fill(discriminator)
    name = "300000.pt"  # trainer.py: f"{save_dir}/{str(i).zfill(6)}.pt", train_iter 300000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        torch.save(  # the dict trainer.py saves
            {
                "n_iter": 300000,
                "generator": generator.state_dict(),
                "discriminator": discriminator.state_dict(),
            },
            folder / name,
        )
        reloaded = Generator(image_in_channels=3, edge_in_channels=2, out_channels=3)
        reloaded.load_state_dict(torch.load(folder / name)["generator"])  # as test.py
        reloaded_d = Discriminator(image_in_channels=3, edge_in_channels=2)
        reloaded_d.load_state_dict(torch.load(folder / name)["discriminator"])  # as train.py
        if not same_state(reloaded.state_dict(), states["generator"]):
            raise RuntimeError("official load does not give back the generator")
        if not same_state(reloaded_d.state_dict(), states["discriminator"]):
            raise RuntimeError("official load does not give back the discriminator")
        layout = layout_of(
            folder, {name: {"generator": "generator", "discriminator": "discriminator"}}
        )
        check_writer(folder, layout, states)

    inputs = fixed_inputs.ctsdg_inputs()
    image = inputs["image"].float() / 255.0
    ground_truth = image * 2.0 - 1.0  # ToTensor + Normalize(0.5, 0.5)
    mask = 1.0 - inputs["mask"].float()  # official tensor mask: 1 = valid
    edge, gray = inputs["edge"].float(), inputs["gray"]
    generator.eval()
    discriminator.eval()
    logits = {}

    def keep(name):
        return lambda module, args, result: logits.__setitem__(name, result)

    discriminator.texture_branch.conv5.register_forward_hook(keep("texture"))
    discriminator.structure_branch.conv5.register_forward_hook(keep("structure"))
    discriminator.edge_detector.out_layer[0].register_forward_hook(keep("edge"))
    outputs = {}
    with torch.no_grad():
        # official test.py
        input_image, input_edge, input_gray = ground_truth * mask, edge * mask, gray * mask
        output, projected_image, projected_edge = generator(
            input_image, torch.cat((input_edge, input_gray), dim=1), mask
        )
        outputs["g_output"] = output
        outputs["g_projected_image"] = projected_image
        outputs["g_projected_edge"] = projected_edge
        for tag, img, is_real in (("real", ground_truth, True), ("fake", output, False)):
            pred, fake_edge = discriminator(img, gray, edge, is_real)
            outputs[f"d_{tag}_pred"] = pred
            outputs[f"d_{tag}_edge"] = fake_edge
            outputs[f"d_{tag}_logits"] = torch.cat([logits["texture"], logits["structure"]], 1)
            outputs[f"d_{tag}_edge_logits"] = logits["edge"]
    meta = {
        "method": "ctsdg",
        "official_repo": "xiefan-guo/ctsdg",
        "recipe": RECIPE,
        "files": layout,
        "networks": networks_meta(
            entries,
            states,
            {
                "generator": "models/generator/generator.py Generator(3, 2, 3)",
                "discriminator": "models/discriminator/discriminator.py Discriminator(3, 2)",
            },
        ),
        "inputs": fixed_inputs.DESCRIPTION["ctsdg"],
        "official_calls": {
            "g_*": "test.py: generator(gt*m, cat(edge*m, gray*m), m), gt in [-1, 1], m 1=valid",
            "d_real_*": "discriminator(gt, gray, edge, True); *_logits: conv5 / out_layer hooks",
            "d_fake_*": "discriminator(g_output, gray, edge, False)",
        },
    }
    write_fixture(out / "ctsdg", meta, inputs, outputs)


# ----------------------------------------------------------------------------- StructureFlow
def record_structureflow(src: Path, out: Path) -> None:
    worst = compat.check_resample2d()
    print(f"resample2d CPU shim vs per-pixel loop: max |diff| {worst:.2e}")
    if worst > 1e-5:
        raise RuntimeError("the resample2d CPU shim does not follow the kernel")
    compat.install_offline_vgg()
    compat.install_stub_modules()
    compat.install_resample2d_cpu()
    sys.path.insert(0, str(src))
    with compat.no_cuda():
        from src.models import StructureFlowModel  # official

        def config(path: Path, model: int) -> types.SimpleNamespace:
            return types.SimpleNamespace(
                MODEL=model, PATH=str(path), NAME="parity", DIS_GAN_LOSS="lsgan", LR=1e-4,
                BETA1=0.0, BETA2=0.999, LR_POLICY="constant", INIT_TYPE="xavier",
            )  # fmt: skip

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "parity" / "checkpoints").mkdir(parents=True)
            stage1 = StructureFlowModel(config(folder, 1))  # s_gen, s_dis
            stage3 = StructureFlowModel(config(folder, 3))  # s_gen, f_gen, f_dis
            nets = {
                "structure_generator": stage1.s_gen,
                "structure_discriminator": stage1.s_dis,
                "texture_generator": stage3.f_gen,
                "texture_discriminator": stage3.f_dis,
            }
            entries, states = {}, {}
            for name, net in nets.items():
                entries[name], states[name] = fill(net)
            stage3.s_gen.load_state_dict(states["structure_generator"])
            stage1.save("latest")  # official BaseModel.save: <iter>_net_<name>.pth
            stage3.save("latest")  # stage 3 skips s_* (official), stage 1 wrote them
            reloaded = StructureFlowModel(config(folder, 3))
            reloaded.load("latest")  # official BaseModel.load
            for name, net in {
                "structure_generator": reloaded.s_gen,
                "texture_generator": reloaded.f_gen,
                "texture_discriminator": reloaded.f_dis,
            }.items():
                if not same_state(net.state_dict(), states[name]):
                    raise RuntimeError(f"official load does not give back {name}")
            ckpt = folder / "parity" / "checkpoints"
            layout = layout_of(
                ckpt,
                {
                    "latest_net_s_gen.pth": {None: "structure_generator"},
                    "latest_net_s_dis.pth": {None: "structure_discriminator"},
                    "latest_net_f_gen.pth": {None: "texture_generator"},
                    "latest_net_f_dis.pth": {None: "texture_discriminator"},
                },
            )
            check_writer(ckpt, layout, states)

        inputs = fixed_inputs.structureflow_inputs()
        gts = inputs["image"].float() / 255.0 * 2.0 - 1.0
        smooths = inputs["smooth"].float() / 255.0 * 2.0 - 1.0
        maps = inputs["mask"].float()  # 1 = hole
        model = reloaded.eval()
        outputs = {}
        with torch.no_grad():
            inputs_masked = gts * (1 - maps)  # src/data.py: inputs = gt * (1 - mask)
            stage_1 = model.structure_forward(inputs_masked, smooths, maps)
            output, flow = model.flow_forward(inputs_masked, stage_1, maps)
            outputs["gs_output"] = stage_1
            outputs["gt_output"] = output
            outputs["gt_flow"] = flow
            for tag, img in (("real", gts), ("fake", output)):
                pre1, pre2 = model.f_dis(img)
                outputs[f"d_{tag}_scale1"] = pre1
                outputs[f"d_{tag}_scale2"] = pre2
    meta = {
        "method": "structureflow",
        "official_repo": "RenYurui/StructureFlow",
        "recipe": RECIPE,
        "files": layout,
        "networks": networks_meta(
            entries,
            states,
            {
                "structure_generator": "src/network.py StructureGen(**structure_param)",
                "structure_discriminator": "src/network.py MultiDiscriminator(**dis_param)",
                "texture_generator": "src/network.py FlowGen(**flow_param)",
                "texture_discriminator": "src/network.py MultiDiscriminator(**dis_param)",
            },
        ),
        "inputs": fixed_inputs.DESCRIPTION["structureflow"],
        "official_calls": {
            "gs_output": "StructureFlowModel.structure_forward(gt*(1-m), smooth, m)",
            "gt_output, gt_flow": "StructureFlowModel.flow_forward(gt*(1-m), gs_output, m)",
            "d_*": "f_dis(image): [scale1, scale2]",
        },
        "resample2d": f"CPU shim of the CUDA kernel (compat.py); vs per-pixel loop {worst:.1e}",
    }
    write_fixture(out / "structureflow", meta, inputs, outputs)


RECORDERS = {
    "edgeconnect": record_edgeconnect,
    "ctsdg": record_ctsdg,
    "structureflow": record_structureflow,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("method", choices=sorted(RECORDERS))
    parser.add_argument("official", type=Path, help="checkout of the official repository")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixtures root")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.official.is_dir():
        parser.error(f"official source not found: {args.official}")
    RECORDERS[args.method](args.official.resolve(), args.out)


if __name__ == "__main__":
    main()
