"""Record the official CSA outputs for the official-weights parity test (run by hand, not in CI).

    python scripts/official_parity/csa.py /path/to/CSA-inpainting [--out tests/fixtures/official]

The path is a checkout of KumapowerLIU/CSA-inpainting; nothing is fetched and no official file
is modified or copied. The script

1. builds the official networks with the official classes (``models/networks.py``:
   ``UnetGenerator(3, 3, 8, 64)`` = netP, ``UnetGeneratorCSA(6, 3, 8, opt, mask, ...)`` = netG,
   ``NLayerDiscriminator(3, 64, 3)`` = netD, ``PFDiscriminator()`` = netF, affine instance
   norm, ``train.ipynb`` options) under run-time shims (below);
2. fills every tensor with the deterministic recipe of :mod:`inpaintzoo.official.synthetic`
   through the official ``load_state_dict``;
3. saves them with the official ``BaseModel.save_network`` (``30_net_G.pth``, ``30_net_P.pth``,
   ``30_net_D.pth``, ``30_net_F.pth``: bare state dicts; ``test.ipynb`` loads epoch 30), reloads
   them with ``BaseModel.load_network`` and checks that ``write_official_files`` (what the test
   uses) writes the same files;
4. runs the official forward of ``models/CSA.py`` (``set_input`` + ``forward``, written out
   here because the model class hard-codes a CUDA device) in eval mode on a fixed 256 px input,
   records the consistency-loss values of ``InnerCos`` / ``InnerCos2`` against a seeded target,
   and the discriminators' outputs;
5. writes ``<out>/csa/keys.json`` (file layout, key lists with shapes in official order, recipe,
   digests, output statistics) and ``<out>/csa/parity.npz`` (inputs and official outputs).

Shims (no arithmetic changed): ``Tensor.cuda`` returns the tensor (the code tests
``torch.cuda.is_available`` without calling it, so it always moves to the GPU);
``torch.cuda.FloatTensor`` is ``torch.FloatTensor`` (``CSAFunction`` allocates with it); the
hole masks are bool where the 2019 code used ``uint8`` (modern ``masked_fill_`` refuses
``uint8``). The official CSA layer's per-position Python loop takes a few seconds on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compat  # noqa: E402
import fixed_inputs  # noqa: E402
from record import check_writer, fill, networks_meta, same_state, stats  # noqa: E402

from inpaintzoo.official.synthetic import RECIPE  # noqa: E402

REPO = HERE.parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "official"
EPOCH = "30"
FILES = {"G": "refine_generator", "P": "rough_generator", "D": "discriminator",
         "F": "feature_discriminator"}  # fmt: skip
#: seeds of the inputs generated here (the test regenerates the consistency target from its seed)
MASK_SEED, FEATURE_SEED, TARGET_SEED = 4, 11, 20190512
INPUTS = (
    "image: astronaut.png (skimage) resized to 256 (PIL bicubic), uint8 (1,3,256,256); mask: "
    f"free_form_mask(256, 256, seed {MASK_SEED}), 1 = hole; feature (netF input): 0.5 * "
    f"randn(1, 256, 16, 16) from torch.Generator seed {FEATURE_SEED}; consistency target: "
    f"0.5 * randn(1, 512, 32, 32) from torch.Generator seed {TARGET_SEED}"
)


@contextlib.contextmanager
def cpu_shims():
    original = getattr(torch.cuda, "FloatTensor", None)
    torch.cuda.FloatTensor = torch.FloatTensor
    try:
        with compat.no_cuda():
            yield
    finally:
        torch.cuda.FloatTensor = original


def consistency_target() -> torch.Tensor:
    gen = torch.Generator().manual_seed(TARGET_SEED)
    return 0.5 * torch.randn(1, 512, 32, 32, generator=gen)


def record(src: Path, out: Path) -> None:
    compat.install_offline_vgg()
    sys.path.insert(0, str(src))
    image = fixed_inputs.astronaut(256)
    hole = fixed_inputs._hole(256, MASK_SEED)
    mask = torch.from_numpy(hole)[None, None].bool()
    opt = types.SimpleNamespace(  # train.ipynb Opion (the fields the networks read)
        threshold=5 / 16.0, fixed_mask=1, shift_sz=1, stride=1, mask_thred=1, triple_weight=1,
        strength=1, skip=0, gpu_ids=[], isTrain=True, name="CSA_inpainting",
    )  # fmt: skip
    with cpu_shims():
        from models.base_model import BaseModel  # official
        from models.networks import (  # official
            NLayerDiscriminator,
            PFDiscriminator,
            UnetGenerator,
            UnetGeneratorCSA,
            get_norm_layer,
        )

        def build():
            norm = get_norm_layer("instance")
            cos1, cos2, csa = [], [], []
            nets = {
                "refine_generator": UnetGeneratorCSA(
                    6, 3, 8, opt, mask, csa, cos1, cos2, 64, norm_layer=norm
                ),
                "rough_generator": UnetGenerator(3, 3, 8, 64, norm_layer=norm),
                "discriminator": NLayerDiscriminator(3, 64, n_layers=3, norm_layer=norm),
                "feature_discriminator": PFDiscriminator(),
            }
            return nets, cos1, cos2

        nets, _, _ = build()
        entries, states = {}, {}
        for name, net in nets.items():
            entries[name], states[name] = fill(net)
        with tempfile.TemporaryDirectory() as tmp:
            opt.checkpoints_dir = tmp
            saver = BaseModel()
            saver.initialize(opt)
            for label, name in FILES.items():
                saver.save_network(nets[name], label, EPOCH, [])  # official save_network
            reloaded, cos1, cos2 = build()
            for label, name in FILES.items():
                saver.load_network(reloaded[name], label, EPOCH)  # official load_network
                if not same_state(reloaded[name].state_dict(), states[name]):
                    raise RuntimeError(f"official load does not give back {name}")
            folder = Path(saver.save_dir)
            layout = {
                f"{EPOCH}_net_{label}.pth": {"networks": {"": name}, "extra": {}}
                for label, name in FILES.items()
            }
            check_writer(folder, layout, states)

        for net in reloaded.values():
            net.eval()
        target = consistency_target()
        cos1[0].set_target(target)  # official set_gt_latent: VGG16 relu4_3 of the ground truth
        cos2[0].set_target(target)
        gen = torch.Generator().manual_seed(FEATURE_SEED)
        feature = 0.5 * torch.randn(1, 256, 16, 16, generator=gen)
        outputs: dict[str, torch.Tensor] = {}
        with torch.no_grad():
            # official CSA.set_input: ToTensor + Normalize(0.5, 0.5); hole = ImageNet mean colour
            real_b = torch.from_numpy(image.transpose(2, 0, 1).copy())[None].float() / 255.0
            real_b = (real_b - 0.5) / 0.5
            input_a = real_b.clone()
            for channel, value in enumerate((123.0, 104.0, 117.0)):
                input_a.narrow(1, channel, 1).masked_fill_(mask, 2 * value / 255.0 - 1.0)
            # official CSA.forward
            fake_p = reloaded["rough_generator"](input_a)
            unknown = fake_p.clone().masked_fill_(~mask.expand(1, 3, 256, 256), 0)
            known = input_a.masked_fill_(mask.expand(1, 3, 256, 256), 0)  # in place, as official
            middle = torch.cat((unknown + known, input_a), 1)
            fake_b = reloaded["refine_generator"](middle)
            outputs["rough_output"] = fake_p
            outputs["refine_output"] = fake_b
            outputs["consistency"] = torch.stack([cos1[0].loss, cos2[0].loss])
            outputs["d_fake"] = reloaded["discriminator"](fake_b)
            outputs["d_real"] = reloaded["discriminator"](real_b)
            outputs["f_output"] = reloaded["feature_discriminator"](feature)
    inputs = {
        "image": image.transpose(2, 0, 1)[None].copy(),
        "mask": hole[None, None].copy(),
        "feature": feature.numpy(),
    }
    meta = {
        "method": "csa",
        "official_repo": "KumapowerLIU/CSA-inpainting",
        "recipe": RECIPE,
        "files": layout,
        "networks": networks_meta(
            entries,
            states,
            {
                "refine_generator": "models/networks.py UnetGeneratorCSA(6, 3, 8, opt, ...)",
                "rough_generator": "models/networks.py UnetGenerator(3, 3, 8, 64)",
                "discriminator": "models/networks.py NLayerDiscriminator(3, 64, 3)",
                "feature_discriminator": "models/networks.py PFDiscriminator()",
            },
        ),
        "inputs": INPUTS,
        "seeds": {"mask": MASK_SEED, "feature": FEATURE_SEED, "target": TARGET_SEED},
        "official_calls": {
            "rough_output": "netP(input_A): gt in [-1, 1], hole = (123, 104, 117) mean colour",
            "refine_output": "netG(cat(fake_P*m + input_A*(1-m), input_A*(1-m))) (CSA.forward)",
            "consistency": "[InnerCos.loss, InnerCos2.loss]: MSE(feature * latent_mask, target)",
            "d_fake, d_real": "netD(fake_B), netD(real_B)",
            "f_output": "netF(feature)",
        },
    }
    write(out / "csa", meta, inputs, outputs)


def write(folder: Path, meta: dict, inputs: dict, outputs: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    meta["outputs"] = stats(outputs)
    meta["environment"] = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }
    (folder / "keys.json").write_text(json.dumps(meta, indent=1) + "\n")
    arrays = {f"input_{k}": np.asarray(v) for k, v in inputs.items()}
    arrays.update({f"output_{k}": v.float().numpy() for k, v in outputs.items()})
    np.savez_compressed(folder / "parity.npz", **arrays)
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"wrote {folder} ({size / 1e6:.2f} MB)")
    for key, value in meta["outputs"].items():
        print(f"  {key:26s} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="checkout of KumapowerLIU/CSA-inpainting")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixtures root")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.official / "models" / "networks.py").is_file():
        parser.error(f"not a CSA-inpainting checkout: {args.official}")
    record(args.official.resolve(), args.out)


if __name__ == "__main__":
    main()
