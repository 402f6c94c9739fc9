"""Record the official Shift-Net outputs for the official-weights parity test (run by hand).

    python scripts/official_parity/shiftnet.py /path/to/Shift-Net_pytorch [--out DIR]

The path is a checkout of Zhaoyi-Yan/Shift-Net_pytorch; nothing is fetched and no official file
is modified or copied. For the repository default (``unet_shift_triple``, ``--norm instance``,
``--add_mask2input 1``, ``--use_spectral_norm_D 1``) and for the paper-era configuration
(``--norm batch``, RGB input) the script

1. builds the official networks with the official classes
   (``models/modules/shift_unet.py`` ``UnetGeneratorShiftTriple``,
   ``models/modules/discrimators.py`` ``NLayerDiscriminator``, ``models/networks.py``
   ``get_norm_layer``) on the CPU (the repository supports ``--gpu_ids -1``);
2. fills every tensor with the deterministic recipe of :mod:`inpaintzoo.official.synthetic`
   (batch-norm statistics and spectral-norm ``u``/``v`` included) through ``load_state_dict``;
3. saves them with the official ``BaseModel.save_networks('latest')`` (``latest_net_G.pth``,
   ``latest_net_D.pth``: bare state dicts), reloads them with ``BaseModel.load_networks`` and
   checks that ``write_official_files`` (what the test uses) writes the same files;
4. runs the official ``ShiftNetModel.set_input`` + ``forward`` sequence (written out: the hole of
   the ``[-1, 1]`` image set to 0, the ``1 - mask`` channel appended, the ground-truth pass
   that sets the guidance target, then the masked pass) in eval mode on a fixed 256 px input;
5. writes ``<out>/shiftnet/keys.json`` and ``<out>/shiftnet/parity.npz``. To keep the fixture
   small, the batch-norm configuration's output and the guidance target are stored as crops
   (named in ``keys.json``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import types
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fixed_inputs  # noqa: E402
from csa import write  # noqa: E402
from record import check_writer, fill, networks_meta, same_state  # noqa: E402

from inpaintzoo.official.synthetic import RECIPE  # noqa: E402

REPO = HERE.parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "official"
MASK_SEED = 6
#: what of the larger outputs is stored
CROP = (slice(None), slice(None), slice(96, 160), slice(96, 160))
TARGET_CHANNELS = 32
CONFIGS = {  # configuration -> (norm, input channels), file prefix
    "default": (("instance", 4), "latest"),
    "batchnorm": (("batch", 3), "20"),
}


def record(src: Path, out: Path) -> None:
    sys.path.insert(0, str(src))
    from models.modules.discrimators import NLayerDiscriminator  # official
    from models.modules.shift_unet import UnetGeneratorShiftTriple  # official
    from models.networks import get_norm_layer  # official
    from models.shift_net.base_model import BaseModel  # official

    image = fixed_inputs.astronaut(256)
    hole = fixed_inputs._hole(256, MASK_SEED)
    mask = torch.from_numpy(hole)[None, None].bool()
    opt = types.SimpleNamespace(  # options/base_options.py defaults the networks read
        shift_sz=1, stride=1, mask_thred=1, triple_weight=1, strength=1, skip=0, gpu_ids=[],
        isTrain=True, name="paris", resize_or_crop="resize_and_crop",
    )  # fmt: skip

    def build(norm: str, channels: int):
        innercos, shifts = [], []
        generator = UnetGeneratorShiftTriple(
            channels, 3, 8, opt, innercos, shifts, mask, 64, norm_layer=get_norm_layer(norm)
        )
        discriminator = NLayerDiscriminator(
            3, 64, 3, norm_layer=get_norm_layer(norm), use_sigmoid=True, use_spectral_norm=True
        )
        return {"generator": generator, "discriminator": discriminator}, innercos, shifts

    entries, states, layout, outputs = {}, {}, {}, {}
    real_b = torch.from_numpy(image.transpose(2, 0, 1).copy())[None].float() / 255.0
    real_b = (real_b - 0.5) / 0.5  # ToTensor + Normalize(0.5, 0.5)
    for config, ((norm, channels), epoch) in CONFIGS.items():
        nets, _, _ = build(norm, channels)
        for name, net in nets.items():
            key = f"{config}_{name}"
            entries[key], states[key] = fill(net)
        with tempfile.TemporaryDirectory() as tmp:
            opt.checkpoints_dir = tmp
            saver = BaseModel()
            saver.initialize(opt)
            saver.model_names = ["G", "D"]
            saver.netG, saver.netD = nets["generator"], nets["discriminator"]
            Path(saver.save_dir).mkdir(parents=True)
            saver.save_networks(epoch)  # official save_networks
            reloaded, innercos, shifts = build(norm, channels)
            saver.netG, saver.netD = reloaded["generator"], reloaded["discriminator"]
            saver.load_networks(epoch)  # official load_networks
            for name in nets:
                if not same_state(reloaded[name].state_dict(), states[f"{config}_{name}"]):
                    raise RuntimeError(f"official load does not give back {config} {name}")
            layout[config] = {
                f"{epoch}_net_G.pth": {"networks": {"": f"{config}_generator"}, "extra": {}},
                f"{epoch}_net_D.pth": {"networks": {"": f"{config}_discriminator"}, "extra": {}},
            }
            check_writer(Path(saver.save_dir), layout[config], states)

        generator, discriminator = reloaded["generator"].eval(), reloaded["discriminator"].eval()
        with torch.no_grad():
            # official ShiftNetModel.set_input: hole -> 0, optional 4th channel (~mask)
            real_a = real_b.clone()
            for channel in range(3):
                real_a.narrow(1, channel, 1).masked_fill_(mask, 0.0)
            known = (~mask).float()
            if channels == 4:
                real_a = torch.cat((real_a, known), dim=1)
                gt_input = torch.cat((real_b, known), dim=1)
            else:
                gt_input = real_b
            for layer in shifts + innercos:  # official set_latent_mask
                layer.set_mask(mask)
            generator(gt_input)  # official set_gt_latent: the guidance target of InnerCos
            target = innercos[0].target
            fake_b = generator(real_a)
            if config == "default":
                outputs["output"] = fake_b
                outputs["guidance_target"] = target[:, :TARGET_CHANNELS]
                outputs["d_fake"] = discriminator(fake_b)
                outputs["d_real"] = discriminator(real_b)
            else:
                outputs["batchnorm_output_crop"] = fake_b[CROP]
                outputs["batchnorm_d_real"] = discriminator(real_b)
    inputs = {"image": image.transpose(2, 0, 1)[None].copy(), "mask": hole[None, None].copy()}
    classes = {}
    for config, ((norm, channels), _) in CONFIGS.items():
        classes[f"{config}_generator"] = (
            f"models/modules/shift_unet.py UnetGeneratorShiftTriple({channels}, 3, 8, opt, ...), "
            f"get_norm_layer('{norm}')"
        )
        classes[f"{config}_discriminator"] = (
            f"models/modules/discrimators.py NLayerDiscriminator(3, 64, 3, {norm}, "
            "use_sigmoid=True, use_spectral_norm=True)"
        )
    meta = {
        "method": "shiftnet",
        "official_repo": "Zhaoyi-Yan/Shift-Net_pytorch",
        "recipe": RECIPE,
        "files": layout,  # per configuration: the files of one official checkpoints folder
        "networks": networks_meta(entries, states, classes),
        "inputs": (
            "image: astronaut.png (skimage) resized to 256 (PIL bicubic), uint8 (1,3,256,256); "
            f"mask: free_form_mask(256, 256, seed {MASK_SEED}), 1 = hole"
        ),
        "configurations": {
            k: {"norm": v[0][0], "input_channels": v[0][1]} for k, v in CONFIGS.items()
        },
        "crops": {
            "batchnorm_output_crop": "output[:, :, 96:160, 96:160]",
            "guidance_target": f"InnerCos.target[:, :{TARGET_CHANNELS}] (the GT pass's latter)",
        },
        "official_calls": {
            "output": "netG(real_A): [-1, 1], hole 0, cat ~mask (set_input, forward)",
            "guidance_target": "netG(cat(real_B, ~mask)) then InnerCos.target (set_gt_latent)",
            "d_fake, d_real": "netD(fake_B), netD(real_B): sigmoid outputs (use_sigmoid)",
            "batchnorm_*": "the same calls for --norm batch, 3-channel input, eval mode",
        },
    }
    write(out / "shiftnet", meta, inputs, outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="checkout of Zhaoyi-Yan/Shift-Net_pytorch")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixtures root")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not (args.official / "models" / "modules" / "shift_unet.py").is_file():
        parser.error(f"not a Shift-Net_pytorch checkout: {args.official}")
    record(args.official.resolve(), args.out)


if __name__ == "__main__":
    main()
