"""Record the MEDFE official-weights parity fixture (run by hand, not in CI).

    python scripts/official_parity/medfe.py /path/to/Rethinking-Inpainting-MEDFE [--out DIR]

The path is a checkout of KumapowerLIU/Rethinking-Inpainting-MEDFE with ``models/Encoder.py``,
``models/Decoder.py``, ``models/PCconv.py``, ``models/InnerCos.py``, ``models/Discriminator.py``,
``models/networks.py``, ``util/util.py`` and ``util/Selfpatch.py`` (the ``models/PCconv.py`` of
commit 33b420d has a full-width comma in ``cal_feat_mask(mask, 3，1)``: use a commit whose file
compiles, e.g. dd838b0); nothing is fetched and no official file is modified. The script

1. builds the official networks as ``networks.define_G`` / ``define_D`` do (``Encoder``,
   ``Decoder``, ``PCblock``, ``NLayerDiscriminator`` with the ``instance`` norm layer), without
   their random init (every tensor is overwritten next); ``.cuda()`` calls in ``PCconv.py``
   (the Gaussian table, the partial-conv masks) are no-ops under ``compat.no_cuda``;
2. fills every network with the deterministic recipe of :mod:`inpaintzoo.official.synthetic`
   (the frozen ``mask_conv`` kernels included: released files carry the random kernels of the
   official initialiser, never all-ones ones) through the official ``load_state_dict``;
3. saves them as the official ``BaseModel.save_networks`` does on a GPU machine
   (``<epoch>_net_<EN|DE|MEDFE|D|F>.pth`` = ``{"net": state_dict, "optimize": Adam state}``),
   checks that :func:`write_official_files` writes the same content, and that the official
   ``load_networks`` reading (``state_dict["net"]``) gives the networks back;
4. runs the official inference in eval mode (``MEDFE.set_input`` + ``forward``: hole filled with
   the ImageNet mean, ``netEN(cat[input, 1 - mask x3])``, ``netMEDFE(features, mask)``,
   ``netDE``) once per sample (the official code handles one mask per batch, so each sample is
   its own batch), the two discriminators on the image and on a 64x64 crop, and writes
   ``<out>/medfe/keys.json`` and ``<out>/medfe/parity.pt``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compat  # noqa: E402
import fixed_inputs  # noqa: E402
from record import DEFAULT_OUT, networks_meta, same_state, sn_dims, write_fixture  # noqa: E402

from inpaintzoo.masks import free_form_mask  # noqa: E402
from inpaintzoo.official.synthetic import (  # noqa: E402
    RECIPE,
    key_entries,
    synthetic_state_dict,
    write_official_files,
)

SIZE = 256  # fineSize; PCconv.py hard-codes 32/64/128 feature sizes
EPOCH = 60  # train.py: save_networks(epoch), niter + niter_decay = 60
CROP = (40, 150)  # the local discriminator's crop (crop_x, crop_y), as MEDFE.set_input draws it
DESCRIPTION = (
    "two samples: astronaut.png (skimage) resized to 256 (PIL bicubic) and the same image "
    "flipped left-right; masks free_form_mask(256, 256, seed 21 / 22), 1 = hole (the official "
    "mask_global); structure: the image blurred with PIL GaussianBlur(radius 2) (stands in for "
    "the MATLAB RTV image, only the InnerCos loss reads it)"
)


def inputs() -> dict[str, torch.Tensor]:
    image = fixed_inputs.astronaut(SIZE)
    images = np.stack([image, image[:, ::-1]])
    smooth = np.stack(
        [np.asarray(Image.fromarray(i).filter(ImageFilter.GaussianBlur(2))) for i in images]
    )
    holes = np.stack(
        [np.asarray(free_form_mask(SIZE, SIZE, np.random.default_rng(s))) > 0.5 for s in (21, 22)]
    )

    def chw(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))

    return {
        "image": chw(images),
        "smooth": chw(smooth),
        "mask": torch.from_numpy(holes.astype(np.uint8))[:, None],
    }


def official_forward(nets: dict, stde, gt: torch.Tensor, st: torch.Tensor, hole: torch.Tensor):
    """``MEDFE.set_input`` + ``MEDFE.forward`` for one sample (official models/MEDFE.py)."""
    mask = hole.expand(1, 3, SIZE, SIZE)  # the dataset's RGB mask (1 = hole)
    mask_global = torch.unsqueeze(torch.unsqueeze(mask[0][0], 0), 1).byte()  # mask_process
    input_de = gt.clone()
    ex_mask = mask_global.expand(1, 3, SIZE, SIZE)
    inv_ex_mask = torch.add(torch.neg(ex_mask.float()), 1).float()
    stde.set_target(gt, st)
    for channel, value in enumerate((123.0, 104.0, 117.0)):
        input_de.narrow(1, channel, 1).masked_fill_(mask_global.bool(), 2 * value / 255.0 - 1.0)
    features = nets["EN"](torch.cat([input_de, inv_ex_mask], 1))
    x_out = nets["MEDFE"](list(features), mask_global)
    fake = nets["DE"](x_out[0], x_out[1], x_out[2], x_out[3], x_out[4], x_out[5])
    return fake, stde.ST, stde.DE, stde.loss


def record(src: Path, out: Path) -> None:
    sys.path.insert(0, str(src))
    with compat.no_cuda():
        from models import networks  # official

        norm = networks.get_norm_layer("instance")  # opt.norm
        stde_list: list = []
        nets = {
            "EN": networks.Encoder(6, 3, 64, norm_layer=norm, use_dropout=False),
            "DE": networks.Decoder(6, 3, 64, norm_layer=norm, use_dropout=False),
            "MEDFE": networks.PCblock(stde_list),
            "D": networks.NLayerDiscriminator(3, 64, n_layers=3, norm_layer=norm),
            "F": networks.NLayerDiscriminator(3, 64, n_layers=3, norm_layer=norm),
        }
        entries, states = {}, {}
        for name, net in nets.items():
            entries[name] = key_entries(net.state_dict(), sn_dims(net))
            states[name] = synthetic_state_dict(entries[name])
            net.load_state_dict(states[name], strict=True)
        layout = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, net in nets.items():  # BaseModel.save_networks, GPU branch
                optimizer = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
                file = f"{EPOCH}_net_{name}.pth"
                state = {"net": net.state_dict(), "optimize": optimizer.state_dict()}
                torch.save(state, Path(tmp) / file)
                payload = torch.load(Path(tmp) / file, map_location="cpu", weights_only=True)
                if not same_state(payload["net"], states[name]):  # load_networks: ["net"]
                    raise RuntimeError(f"the official file does not give back {name}")
                extra = {"optimize": payload["optimize"]}
                layout[file] = {"networks": {"net": name}, "extra": extra}
            with tempfile.TemporaryDirectory() as again:
                write_official_files(layout, states, again)
                for file, spec in layout.items():
                    ours = torch.load(Path(again) / file, map_location="cpu", weights_only=True)
                    theirs = torch.load(Path(tmp) / file, map_location="cpu", weights_only=True)
                    name = spec["networks"]["net"]
                    if set(ours) != set(theirs) or ours["optimize"] != theirs["optimize"]:
                        raise RuntimeError(f"write_official_files does not reproduce {file}")
                    if not same_state(ours["net"], theirs["net"]):
                        raise RuntimeError(f"write_official_files does not reproduce {file}")

        data = inputs()
        gts = data["image"].float() / 255.0 * 2.0 - 1.0  # ToTensor + Normalize(0.5, 0.5)
        sts = data["smooth"].float() / 255.0 * 2.0 - 1.0
        holes = data["mask"].float()
        for net in nets.values():
            net.eval()
        # the pre-tanh values (the recipe's weights saturate the tanh in much of the image)
        logits: dict[str, list] = {"output_logits": [], "projection_logits": []}
        nets["DE"].Decoder_6.model[1].register_forward_hook(
            lambda m, a, r: logits["output_logits"].append(r)
        )
        stde_list[0].down_model[0].register_forward_hook(
            lambda m, a, r: logits["projection_logits"].append(r)
        )
        keys = ("output", "structure", "texture", "inner_loss")
        outputs: dict[str, list] = {k: [] for k in keys}
        with torch.no_grad():
            for i in range(len(gts)):
                fake, st, de, loss = official_forward(
                    nets, stde_list[0], gts[i : i + 1], sts[i : i + 1], holes[i : i + 1]
                )
                for key, value in zip(keys, (fake, st, de, loss.view(1))):
                    outputs[key].append(value)
            outputs = {k: torch.cat(v) for k, v in outputs.items()}
            outputs["output_logits"] = torch.cat(logits["output_logits"])
            # InnerCos applies down_model to ST (structure) first, then DE (texture)
            outputs["structure_logits"] = torch.cat(logits["projection_logits"][0::2])
            outputs["texture_logits"] = torch.cat(logits["projection_logits"][1::2])
            x, y = CROP
            fake = outputs.pop("output")  # = tanh(output_logits): not stored (fixture size)
            outputs["d_real"] = nets["D"](gts)
            outputs["d_fake"] = nets["D"](fake)
            outputs["f_real"] = nets["F"](gts[:, :, x : x + 64, y : y + 64])
            outputs["f_fake"] = nets["F"](fake[:, :, x : x + 64, y : y + 64])
    meta = {
        "method": "medfe",
        "official_repo": "KumapowerLIU/Rethinking-Inpainting-MEDFE",
        "recipe": RECIPE,
        "files": layout,
        "networks": networks_meta(
            entries,
            states,
            {
                "EN": "models/Encoder.py Encoder(6, 3, 64, norm_layer=instance)",
                "DE": "models/Decoder.py Decoder(6, 3, 64, norm_layer=instance)",
                "MEDFE": "models/networks.py PCblock (PCconv.py PCconv + InnerCos.py InnerCos)",
                "D": "models/Discriminator.py NLayerDiscriminator(3, 64, n_layers=3)",
                "F": "models/Discriminator.py NLayerDiscriminator(3, 64, n_layers=3)",
            },
        ),
        "inputs": DESCRIPTION,
        "crop": list(CROP),
        "official_calls": {
            "output_logits": "MEDFE.set_input + forward per sample: fake_out before its tanh "
            "(forward hook on Decoder_6.model[1]; fake_out = tanh of it, not stored)",
            "structure, texture, inner_loss": "InnerCos.ST, InnerCos.DE, InnerCos.loss",
            "structure_logits, texture_logits": "ST, DE before their tanh (hook on "
            "InnerCos.down_model[0])",
            "d_*": "netD(image in [-1, 1])",
            "f_*": "netF(image[:, :, x:x+64, y:y+64]) with (x, y) = crop",
        },
    }
    write_fixture(out / "medfe", meta, data, outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="checkout of the official MEDFE repository")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="fixtures root")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not (args.official / "models" / "PCconv.py").is_file():
        parser.error(f"official source not found (no models/PCconv.py): {args.official}")
    record(args.official.resolve(), args.out)


if __name__ == "__main__":
    main()
