"""Record LBAM's official-parity fixture (run by hand, not in CI).

    python scripts/official_parity/lbam.py /path/to/LBAM_Pytorch

The path is a checkout of Vious/LBAM_Pytorch; this script fetches nothing and changes no
official file. It

1. builds the official ``LBAMModel(4, 3)`` and ``DiscriminatorDoubleColumn(3)`` with the
   official classes (plain PyTorch; nothing to shim: the networks call no ``.cuda()``);
2. fills them with the deterministic recipe of :mod:`inpaintzoo.official.synthetic` (every key,
   BatchNorm statistics included), except the 13 x 4 scalars of the asymmetric Gaussian
   activations, which the recipe has no rule for: each is ``low - 0.1 s + 1.2 s u`` with
   ``[low, high]`` its official clamp range, ``s = high - low`` and ``u ~ U(0, 1)`` from a
   ``torch.Generator`` seeded like the recipe (first 8 bytes of ``sha256("<seed>/<key>")``),
   cast to float32 - so about one in six lies outside its range and the official in-place clamp
   is exercised. Their values are written into ``keys.json`` (the tests read them from there);
3. saves the generator as ``train.py`` does (``torch.save(netG.state_dict(), "LBAM_500.pth")``),
   reloads it as ``test.py`` does (``netG.load_state_dict(torch.load(...))``) and checks that
   :func:`inpaintzoo.official.synthetic.write_official_files` writes the same content; the
   official code never saves the discriminator, so only its key list is kept;
4. runs the official forward passes in eval mode on fixed inputs (``test.py``'s input: image
   times the 3-channel valid mask, concatenated with one mask channel) and writes
   ``tests/fixtures/official/lbam/keys.json`` and ``parity.pt``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fixed_inputs  # noqa: E402
import record  # noqa: E402

from inpaintzoo.blocks.gaussian_activation import GAUSSIAN_BOUNDS  # noqa: E402
from inpaintzoo.masks import free_form_mask  # noqa: E402
from inpaintzoo.official.synthetic import (  # noqa: E402
    RECIPE,
    key_entries,
    state_dict_digest,
    synthetic_state_dict,
)

DEFAULT_OUT = HERE.parents[1] / "tests" / "fixtures" / "official"
GAUSSIAN_KEY = re.compile(r".*\.activationFuncG_A\.(a|mu|sigma1|sigma2)")
G_FILE = "LBAM_500.pth"  # train.py: f"{modelsSavePath}/LBAM_{epoch}.pth", 500 epochs
INPUTS = (
    "image: astronaut.png (skimage) resized to 128 (PIL bicubic), uint8 (1,3,128,128); mask: "
    "free_form_mask(128, 128, seed 7), 1 = hole (the official mask is its 3-channel complement); "
    "image256 / mask256 for the discriminator: the image at 256 and free_form_mask(256, 256, seed "
    "8), each with its horizontal flip as a second sample"
)


def gaussian_value(key: str, seed: int) -> float:
    """The value of one ``g_A`` scalar (see the module docstring)."""
    low, high = GAUSSIAN_BOUNDS[key.rpartition(".")[2]]
    span = high - low
    digest = hashlib.sha256(f"{seed}/{key}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    u = torch.rand((), generator=gen, dtype=torch.float64)
    return float((low - 0.1 * span + 1.2 * span * u).to(torch.float32))


def lbam_state_dict(entries: list[dict], gaussian: dict[str, float], seed: int) -> OrderedDict:
    """The recipe's state dict with the ``g_A`` scalars taken from ``gaussian``."""
    regular = synthetic_state_dict([e for e in entries if e["key"] not in gaussian], seed)
    return OrderedDict(
        (e["key"], torch.tensor(gaussian[e["key"]]) if e["key"] in gaussian else regular[e["key"]])
        for e in entries
    )


def fill(module: torch.nn.Module, seed: int) -> tuple[list[dict], dict[str, float], OrderedDict]:
    entries = key_entries(module.state_dict())
    gaussian = {
        e["key"]: gaussian_value(e["key"], seed) for e in entries if GAUSSIAN_KEY.match(e["key"])
    }
    state = lbam_state_dict(entries, gaussian, seed)
    module.load_state_dict(state, strict=True)
    return entries, gaussian, state


def inputs() -> dict[str, torch.Tensor]:
    def hole(size: int, seed: int) -> torch.Tensor:
        mask = free_form_mask(size, size, np.random.default_rng(seed))
        return torch.from_numpy((np.asarray(mask) > 0.5).astype(np.uint8))[None, None]

    def chw(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None]

    image256, mask256 = chw(fixed_inputs.astronaut(256)), hole(256, 8)
    return {
        "image": chw(fixed_inputs.astronaut(128)),
        "mask": hole(128, 7),
        "image256": torch.cat([image256, image256.flip(-1)]),
        "mask256": torch.cat([mask256, mask256.flip(-1)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="checkout of Vious/LBAM_Pytorch")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixtures root")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.official / "models" / "LBAMModel.py").is_file():
        parser.error(f"not a checkout of Vious/LBAM_Pytorch: {args.official}")
    sys.path.insert(0, str(args.official.resolve()))
    from models.discriminator import DiscriminatorDoubleColumn  # official
    from models.LBAMModel import LBAMModel  # official

    seed = int(RECIPE["seed"])
    generator, discriminator = LBAMModel(4, 3), DiscriminatorDoubleColumn(3)
    g_entries, g_gauss, g_state = fill(generator, seed)
    d_entries, _, d_state = fill(discriminator, seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        torch.save(generator.state_dict(), folder / G_FILE)  # train.py
        reloaded = LBAMModel(4, 3)
        reloaded.load_state_dict(torch.load(folder / G_FILE))  # test.py
        if not record.same_state(reloaded.state_dict(), g_state):
            raise RuntimeError("the official load does not give back the generator")
        layout = record.layout_of(folder, {G_FILE: {None: "generator"}})
        record.check_writer(folder, layout, {"generator": g_state})
    generator, discriminator = reloaded.eval(), discriminator.eval()

    data = inputs()
    image = data["image"].float() / 255.0
    valid = (1.0 - data["mask"].float()).expand(-1, 3, -1, -1).contiguous()
    image256 = data["image256"].float() / 255.0
    valid256 = (1.0 - data["mask256"].float()).expand(-1, 3, -1, -1).contiguous()
    raw = {}
    generator.dc7.register_forward_hook(lambda m, a, out: raw.__setitem__("dc7", out))
    with torch.no_grad():
        masked = image * valid  # test.py: image = image * mask; cat(image, mask[0])
        output = generator(torch.cat([masked, valid[:, :1]], dim=1), valid.clone())
        d_output = discriminator(image256, valid256)
    clamped = {k: float(v) for k, v in generator.state_dict().items() if k in g_gauss}
    outputs = {"g_output": output, "g_dc7": raw["dc7"], "d_output": d_output}
    meta = {
        "method": "lbam",
        "official_repo": "Vious/LBAM_Pytorch",
        "recipe": RECIPE,
        "gaussian_rule": "g_A scalars: low - 0.1 s + 1.2 s u, s = high - low, u ~ U(0, 1) from "
        "sha256('<seed>/<key>') (scripts/official_parity/lbam.py); float32",
        "gaussian_values": g_gauss,
        "gaussian_values_after_official_clamp": clamped,
        "files": layout,
        "networks": {
            "generator": {
                "official_class": "models/LBAMModel.py LBAMModel(4, 3)",
                "digest": state_dict_digest(g_state),
                "keys": g_entries,
            },
            "discriminator": {
                "official_class": "models/discriminator.py DiscriminatorDoubleColumn(3)",
                "digest": state_dict_digest(d_state),
                "keys": d_entries,
                "note": "never saved by the official code: no file, key list only",
            },
        },
        "inputs": INPUTS,
        "official_calls": {
            "g_output": "LBAMModel.forward(cat(image*M, M[:, :1]), M), M = 1 - mask (3 ch)",
            "g_dc7": "the same call, forward hook on dc7 (before (tanh + 1) / 2)",
            "d_output": "DiscriminatorDoubleColumn.forward(image256, 1 - mask256 (3 ch))",
        },
    }
    record.write_fixture(args.out / "lbam", meta, data, outputs)


if __name__ == "__main__":
    main()
