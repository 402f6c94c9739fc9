"""Record PRVS's official-parity fixture (run by hand, not in CI).

    python scripts/official_parity/prvs.py /path/to/PRVS-Image-Inpainting

The path is a checkout of jingyuanli001/PRVS-Image-Inpainting; this script fetches nothing and
changes no official file. It

1. builds the official ``PRVSNet()`` (layer_size 8, attention off) and ``Discriminator(2)`` with
   the official classes (plain PyTorch: the networks call no ``.cuda()``; the training wrapper
   ``model.py`` is not used since it loads an ImageNet VGG16);
2. fills them with the deterministic recipe of :mod:`inpaintzoo.official.synthetic` (every key,
   BatchNorm statistics and spectral-norm ``u``/``v`` included) through the official
   ``load_state_dict``;
3. saves them with the official ``utils/io.py`` ``save_ckpt`` as ``run.py`` does
   (``g_<iter>.pth`` = ``{"n_iter", "generator", "optimizer_G"}``, ``d_<iter>.pth`` likewise),
   reloads them with the official ``load_ckpt``, and checks that inpaintzoo's
   :func:`~inpaintzoo.methods.prvs.read_official_prvs` reads these genuine files into the same
   converted tensors as the files :func:`inpaintzoo.official.synthetic.write_official_files`
   regenerates without the optimizer entries (what the tests use);
4. runs the official forward passes in eval mode on fixed inputs (``model.py`` ``test``: image
   and Canny edges times the valid mask, the mask repeated to 3 channels) and writes
   ``tests/fixtures/official/prvs/keys.json`` and ``parity.pt``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import rgb2gray
from skimage.feature import canny

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fixed_inputs  # noqa: E402
import record  # noqa: E402

from inpaintzoo.masks import free_form_mask  # noqa: E402
from inpaintzoo.official.synthetic import RECIPE, write_official_files  # noqa: E402

DEFAULT_OUT = HERE.parents[1] / "tests" / "fixtures" / "official"
ITERATION = 400000
INPUTS = (
    "image: astronaut.png (skimage) resized to 256 (PIL bicubic), uint8 (1,3,256,256); mask: "
    "free_form_mask(256, 256, seed 11), 1 = hole (the official mask is its complement, repeated "
    "to 3 channels); gray: skimage rgb2gray (float32); edge: skimage canny(gray, sigma=2) of the "
    "whole image (dataset.py), uint8"
)


def inputs() -> dict[str, torch.Tensor]:
    image = fixed_inputs.astronaut(256)
    gray = rgb2gray(image)
    mask = (np.asarray(free_form_mask(256, 256, np.random.default_rng(11))) > 0.5).astype(np.uint8)
    return {
        "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None],
        "mask": torch.from_numpy(mask)[None, None],
        "gray": torch.from_numpy(gray.astype(np.float32))[None, None],
        "edge": torch.from_numpy(canny(gray, sigma=2).astype(np.uint8))[None, None],
    }


def check_reader(folder: Path, layout: dict, states: dict) -> None:
    """The zoo's reader gives the same tensors from the official files and the regenerated ones."""
    from inpaintzoo.methods.prvs import read_official_prvs

    official = read_official_prvs(folder)
    with tempfile.TemporaryDirectory() as tmp:
        write_official_files(layout, states, tmp)
        regenerated = read_official_prvs(Path(tmp))
    for net in ("generator", "edge_discriminator"):
        a, b = official.state_dicts[net], regenerated.state_dicts[net]
        if list(a) != list(b) or not all(torch.equal(a[k], b[k]) for k in a):
            raise RuntimeError(f"read_official_prvs: official and regenerated {net} differ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "official", type=Path, help="checkout of jingyuanli001/PRVS-Image-Inpainting"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixtures root")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.official / "modules" / "PRVSNet.py").is_file():
        parser.error(f"not a checkout of jingyuanli001/PRVS-Image-Inpainting: {args.official}")
    sys.path.insert(0, str(args.official.resolve()))
    from modules.Discriminator import Discriminator  # official
    from modules.PRVSNet import PRVSNet  # official
    from utils.io import load_ckpt, save_ckpt  # official

    generator, discriminator = PRVSNet(), Discriminator(2)
    entries, states = {}, {}
    entries["generator"], states["generator"] = record.fill(generator)
    entries["edge_discriminator"], states["edge_discriminator"] = record.fill(discriminator)
    g_name, d_name = f"g_{ITERATION}.pth", f"d_{ITERATION}.pth"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        optimizers = (
            torch.optim.Adam(generator.parameters(), lr=2e-4),
            torch.optim.Adam(discriminator.parameters(), lr=2e-5),
        )  # model.py initialize_model
        save_ckpt(
            str(folder / g_name),
            [("generator", generator)],
            [("optimizer_G", optimizers[0])],
            ITERATION,
        )
        save_ckpt(
            str(folder / d_name),
            [("discriminator", discriminator)],
            [("optimizer_D", optimizers[1])],
            ITERATION,
        )
        reloaded, reloaded_d = PRVSNet(), Discriminator(2)
        load_ckpt(str(folder / g_name), [("generator", reloaded)])  # run.py --test
        load_ckpt(str(folder / d_name), [("discriminator", reloaded_d)])
        for net, module in (("generator", reloaded), ("edge_discriminator", reloaded_d)):
            if not record.same_state(module.state_dict(), states[net]):
                raise RuntimeError(f"the official load does not give back the {net}")
        layout = {
            g_name: {"networks": {"generator": "generator"}, "extra": {"n_iter": ITERATION}},
            d_name: {
                "networks": {"discriminator": "edge_discriminator"},
                "extra": {"n_iter": ITERATION},
            },
        }
        check_reader(folder, layout, states)
    generator, discriminator = reloaded, reloaded_d
    generator.eval()  # PRVSNet.train() returns None (no `return self`)
    discriminator.eval()

    data = inputs()
    image = data["image"].float() / 255.0
    valid = 1.0 - data["mask"].float()
    gray, edge = data["gray"], data["edge"].float()
    with torch.no_grad():
        # model.py test(): masked_images = gt * m[:, :1], masked_edges = edge * m[:, :1]
        output, out_mask, edge_small, edge_big = generator(
            image * valid, valid.repeat(1, 3, 1, 1), edge * valid
        )
        outputs = {
            "g_output": output,
            "g_edge": edge_big,
            "g_edge_small": edge_small,
            "g_mask": out_mask[:, :1].to(torch.uint8),
        }
        # get_d_loss / edge_loss: [edge, gray resized (nearest)]; real edges clamp(4 e, 0, 1)
        for tag, fake in (("", edge_big), ("_small", edge_small)):
            small_gray = F.interpolate(gray, size=fake.shape[-2:])
            real = (F.interpolate(edge, size=fake.shape[-2:]) * 4).clamp(0, 1)
            outputs[f"d_fake{tag}"] = discriminator(torch.cat([fake, small_gray], dim=1))[0]
            outputs[f"d_real{tag}"] = discriminator(torch.cat([real, small_gray], dim=1))[0]
    meta = {
        "method": "prvs",
        "official_repo": "jingyuanli001/PRVS-Image-Inpainting",
        "recipe": RECIPE,
        "files": layout,
        "files_note": "the official files also hold 'optimizer_G' / 'optimizer_D' (fresh Adam "
        "state dicts); the regenerated ones omit them (the reader ignores them: checked)",
        "networks": record.networks_meta(
            entries,
            states,
            {
                "generator": "modules/PRVSNet.py PRVSNet() (layer_size 8, att False)",
                "edge_discriminator": "modules/Discriminator.py Discriminator(2)",
            },
        ),
        "inputs": INPUTS,
        "official_calls": {
            "g_*": "PRVSNet.forward(image*m, m repeated to 3 ch, edge*m), m = 1 - mask: "
            "(output, mask [channel 0 kept], edge_small (dec_2), edge (dec_1))",
            "d_fake*": "Discriminator(cat(g_edge*, interpolate(gray))) sigmoid output",
            "d_real*": "Discriminator(cat(clamp(4 interpolate(edge), 0, 1), interpolate(gray)))",
        },
    }
    record.write_fixture(args.out / "prvs", meta, data, outputs)


if __name__ == "__main__":
    main()
