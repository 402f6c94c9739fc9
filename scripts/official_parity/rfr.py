"""Record the RFR-Net official-weights parity fixture (run by hand, not in CI).

    python scripts/official_parity/rfr.py /path/to/RFR-Inpainting [--out tests/fixtures/official]

The path is a checkout of jingyuanli001/RFR-Inpainting (``modules/RFRNet.py``,
``modules/Attention.py``, ``modules/partialconv2d.py``, ``utils/io.py``); nothing is fetched
and no official file is modified. The script

1. builds the official ``RFRNet()`` (``modules/Attention.py`` calls ``.cuda()`` on its unused
   propagation kernels: ``compat.no_cuda`` makes that a no-op on this CPU machine);
2. fills it with the deterministic recipe of :mod:`inpaintzoo.official.synthetic` through the
   official ``load_state_dict``; the recipe has no rule for the attention's scalar
   ``RFRModule.att.att.ratio``, which gets the fixed value in :data:`OVERRIDES` (negative, so
   the ``|ratio|`` of the score blending is exercised);
3. saves it with the official ``utils/io.py`` ``save_ckpt`` (``{"n_iter", "generator",
   "optimizer_G"}``, as ``model.py`` trains it), reloads it with the official ``load_ckpt`` and
   checks that :func:`write_official_files` (what the tests use) writes the same content;
4. runs the official forward (``model.py`` ``test``: ``G(gt * m, cat([m] * 3))``, m 1 = valid)
   in eval mode on two fixed 128 px images with their own masks, and writes
   ``<out>/rfr/keys.json`` (file layout, key list with shapes in official order, recipe,
   overrides, digests, output statistics) and ``<out>/rfr/parity.pt`` (inputs and outputs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compat  # noqa: E402
import fixed_inputs  # noqa: E402
from record import DEFAULT_OUT, networks_meta, same_state, write_fixture  # noqa: E402

from inpaintzoo.masks import free_form_mask  # noqa: E402
from inpaintzoo.official.synthetic import (  # noqa: E402
    RECIPE,
    key_entries,
    synthetic_state_dict,
    write_official_files,
)

#: keys the recipe has no rule for, and their fixed values
OVERRIDES: dict[str, list[float]] = {"RFRModule.att.att.ratio": [-0.75]}
SIZE = 128
FILE = "g_400000.pth"  # model.py: save_ckpt('{:s}/g_{:d}.pth'.format(save_path, self.iter), ...)
DESCRIPTION = (
    "two samples: astronaut.png (skimage) resized to 128 (PIL bicubic) and the same image "
    "flipped left-right; masks free_form_mask(128, 128, seed 11 / 12), 1 = hole (the official "
    "mask is its complement, repeated to 3 channels)"
)


def recipe_state(entries: list[dict], overrides: dict[str, list[float]]) -> OrderedDict:
    """The recipe's state dict with the :data:`OVERRIDES` values, in the official key order."""
    regular = [e for e in entries if e["key"] not in overrides]
    state = synthetic_state_dict(regular)
    out = OrderedDict()
    for entry in entries:
        key = entry["key"]
        out[key] = torch.tensor(overrides[key]) if key in overrides else state[key]
    return out


def inputs() -> dict[str, torch.Tensor]:
    image = fixed_inputs.astronaut(SIZE)
    images = np.stack([image, image[:, ::-1]])
    holes = np.stack(
        [np.asarray(free_form_mask(SIZE, SIZE, np.random.default_rng(s))) > 0.5 for s in (11, 12)]
    )
    return {
        "image": torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
        "mask": torch.from_numpy(holes.astype(np.uint8))[:, None],
    }


def record(src: Path, out: Path) -> None:
    sys.path.insert(0, str(src))
    compat.install_offline_vgg()
    with compat.no_cuda():
        from modules.RFRNet import RFRNet  # official
        from utils.io import load_ckpt, save_ckpt  # official

        generator = RFRNet()
        entries = key_entries(generator.state_dict())
        state = recipe_state(entries, OVERRIDES)
        generator.load_state_dict(state, strict=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / FILE
            optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4)  # model.py
            save_ckpt(str(path), [("generator", generator)], [("optimizer_G", optimizer)], 400000)
            reloaded = RFRNet()
            load_ckpt(str(path), [("generator", reloaded)], [("optimizer_G", optimizer)])
            if not same_state(reloaded.state_dict(), state):
                raise RuntimeError("the official load_ckpt does not give back the generator")
            payload = torch.load(path, map_location="cpu", weights_only=True)
            extra = {k: v for k, v in payload.items() if k != "generator"}
            layout = {FILE: {"networks": {"generator": "generator"}, "extra": extra}}
            with tempfile.TemporaryDirectory() as again:
                write_official_files(layout, {"generator": state}, again)
                ours = torch.load(Path(again) / FILE, map_location="cpu", weights_only=True)
            if set(ours) != set(payload) or not same_state(ours["generator"], state):
                raise RuntimeError("write_official_files does not reproduce the official file")
            if ours["optimizer_G"] != payload["optimizer_G"] or ours["n_iter"] != 400000:
                raise RuntimeError("write_official_files does not reproduce the extras")

        data = inputs()
        gt = data["image"].float() / 255.0
        valid = 1.0 - data["mask"].float()
        generator.eval()
        with torch.no_grad():
            masks = torch.cat([valid] * 3, dim=1)  # model.py test()
            output, _ = generator(gt * masks, masks)
    meta = {
        "method": "rfr",
        "official_repo": "jingyuanli001/RFR-Inpainting",
        "recipe": RECIPE,
        "overrides": OVERRIDES,
        "files": layout,
        "networks": networks_meta(
            {"generator": entries},
            {"generator": state},
            {"generator": "modules/RFRNet.py RFRNet()"},
        ),
        "inputs": DESCRIPTION,
        "official_calls": {
            "output": "model.py test(): G(gt * m3, m3) in eval mode, m3 = cat([1 - hole] * 3)"
        },
    }
    write_fixture(out / "rfr", meta, data, {"output": output})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="checkout of jingyuanli001/RFR-Inpainting")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixtures root")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not (args.official / "modules" / "RFRNet.py").is_file():
        parser.error(f"official source not found (no modules/RFRNet.py): {args.official}")
    record(args.official.resolve(), args.out)


if __name__ == "__main__":
    main()
