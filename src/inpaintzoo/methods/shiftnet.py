"""Shift-Net (Yan, Li, Li, Zuo, Shan, ECCV 2018) as a LightningModule.

A pix2pix U-Net whose 32x32 decoder step concatenates a **shift-connection** feature: every hole
position takes the encoder feature of its nearest known neighbour, found by cosine similarity with
the decoder feature there (:mod:`inpaintzoo.blocks.shift`). A **guidance loss** pulls the
decoder feature in the hole towards the encoder feature of the ground truth, so that it is a good
query. Facts from ``../shared/specs/shiftnet.md`` and the official code
(Zhaoyi-Yan/Shift-Net_pytorch ``models/shift_net/shiftnet_model.py``, ``InnerCos.py``,
``InnerCosFunction.py``, ``options/*.py``):

* G loss = 100 L1(output, ground truth) (whole image, ``[-1, 1]``; ``lambda_A``) + 1 guidance
  (MSE, ``--strength``) + 0.2 adversarial (vanilla GAN, ``--gan_weight``): the paper's weights
  (L1 1, guidance 0.01, adversarial 0.002) scaled by 100. The VGG16 style/content/TV terms the
  repository added in 2019 (``--style_weight 10``, ``--content_weight 1``, ``--tv_weight 0``) are
  not part of the paper and not implemented.
* D loss = 0.5 (BCE(D(real), 1) + BCE(D(fake), 0)); D step first, then G (official
  ``optimize_parameters``).
* Adam lr 2e-4, betas (0.5, 0.999) for both; constant rate (``--niter 30``, ``--niter_decay 0``).

Guidance loss: the official ``InnerCosFunction`` adds the gradient of ``MSE(former ⊙ m, target)``
in its backward pass, ``target`` being the ground truth's encoder feature from an extra forward
pass (``set_gt_latent``). Here it is the loss term ``mean(((former - target) ⊙ m)²)`` (mean over
all elements): the same gradient; the official value differs by the constant ``mean(target² (1 -
m))`` (docs/methods/shiftnet.md). The ground-truth pass runs only the encoder levels the target
needs.

Differences from the official code (all in docs/methods/shiftnet.md): one mask per sample (the
official code shares the first sample's mask across the batch); irregular masks, so the
discriminator sees the whole image and the centre-only discounted L1 (``--mask_weight_G``) does not
apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from inpaintzoo.blocks.conv import has_spectral_norm
from inpaintzoo.conventions import to_signed
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, register_method
from inpaintzoo.nets.shiftnet import (
    OFFICIAL_PARAM_COUNTS,
    SHIFTNET_VARIANTS,
    build_shiftnet_nets,
    convert_official_state_dict,
)
from inpaintzoo.utils.io import sha256_file

__all__ = ["ShiftNet", "guidance_loss", "read_official_shiftnet"]


def guidance_loss(decoder: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """``mean(((decoder - target) ⊙ hole)²)`` over all elements (B, C, h, w): the guidance loss
    with the official gradient (``hole`` (B, 1, h, w) is broadcast over channels)."""
    diff = (decoder.float() - target.float()) * hole.to(torch.float32)
    return diff.pow(2).mean()


# ----------------------------------------------------------------------------- official weights
_FILE = re.compile(r"(?P<epoch>.+)_net_(?P<net>[GD])\.pth")


def _epoch_files(path: Path) -> tuple[Path, Path | None]:
    """The generator file (and the discriminator of the same epoch, if present): ``path`` may be
    ``<epoch>_net_G.pth`` itself or its folder (then ``latest`` if present, else the highest
    numbered epoch)."""
    from inpaintzoo.official import OfficialWeightsError

    if path.is_file():
        found = _FILE.fullmatch(path.name)
        if found is None:
            raise OfficialWeightsError(
                f"{path}: a Shift-Net checkpoint is named <epoch>_net_G.pth (or _net_D.pth), as "
                "the official save_networks writes it",
                str(path),
            )
        folder, epoch = path.parent, found["epoch"]
    elif path.is_dir():
        folder = path
        epochs = {
            m["epoch"] for p in path.iterdir() if (m := _FILE.fullmatch(p.name)) and m["net"] == "G"
        }
        if not epochs:
            present = sorted(p.name for p in path.iterdir() if p.is_file())
            raise OfficialWeightsError(
                f"{path} holds no <epoch>_net_G.pth (the official Shift-Net generator file, e.g. "
                f"latest_net_G.pth); found: {', '.join(present[:12]) or 'no files'}",
                str(path),
            )
        numbered = sorted((int(e), e) for e in epochs if e.isdigit())
        epoch = (
            "latest"
            if "latest" in epochs
            else (numbered[-1][1] if numbered else sorted(epochs)[-1])
        )
    else:
        raise FileNotFoundError(f"official Shift-Net weights not found: {path}")
    generator = folder / f"{epoch}_net_G.pth"
    if not generator.is_file():
        raise OfficialWeightsError(
            f"{folder} lacks {generator.name}", str(folder), [generator.name]
        )
    disc = folder / f"{epoch}_net_D.pth"
    return generator, disc if disc.is_file() else None


def _read_state_dict(file: Path, what: str) -> dict[str, torch.Tensor]:
    from inpaintzoo.official import OfficialWeightsError
    from inpaintzoo.official.errors import describe_keys
    from inpaintzoo.official.importers import guess_network, load_weights_file

    payload = load_weights_file(file)
    if not (
        isinstance(payload, Mapping)
        and payload
        and all(torch.is_tensor(v) for v in payload.values())
    ):
        keys = list(payload) if isinstance(payload, Mapping) else []
        raise OfficialWeightsError(
            f"{file} is not {what}: expected a bare state dict of tensors (official "
            f"save_networks), found {describe_keys(map(str, keys)) or type(payload).__name__}",
            str(file),
            [str(k) for k in keys],
        )
    keys = [str(k) for k in payload]
    if any(k.startswith(("e1_c.", "module.e1_c.")) for k in keys):
        raise OfficialWeightsError(
            f"{file} is a face_unet_shift_triple generator (the face_shiftnet model of the "
            "CelebA-HQ releases: layers e1_c..d8_dc); inpaintzoo implements unet_shift_triple "
            "(the Paris StreetView releases and the default model)",
            str(file),
            keys[:8],
        )
    first = "model.model.0.weight" if what.startswith("a Shift-Net generator") else "model.0.bias"
    if not any(k in (first, f"module.{first}") for k in keys):
        other = guess_network(keys)
        hint = f"; it looks like {other}" if other else ""
        raise OfficialWeightsError(
            f"{file} is not {what} (no {first!r} key; keys {describe_keys(keys)}){hint}",
            str(file),
            keys[:8],
        )
    return dict(payload)


def read_official_shiftnet(path: str | Path):
    """Read an official Shift-Net release (``unet_shift_triple``): ``<epoch>_net_G.pth`` and
    optionally ``<epoch>_net_D.pth`` (bare state dicts, official ``save_networks``), given as the
    file or its folder. The configuration is read from the weights: 4 input channels ->
    ``mask_channel``, batch-norm running statistics -> ``norm=batch`` (else ``instance``),
    spectral-norm keys in D -> ``disc_spectral_norm``. Returns
    :class:`~inpaintzoo.official.importers.OfficialWeights` (converted by name)."""
    from inpaintzoo.official.importers import OfficialWeights

    path = Path(path)
    generator_file, disc_file = _epoch_files(path)
    weights = OfficialWeights("shiftnet", path, {}, {}, {})
    sd = _read_state_dict(generator_file, "a Shift-Net generator (unet_shift_triple)")
    first = sd.get("model.model.0.weight", sd.get("module.model.model.0.weight"))
    norm = "batch" if any(k.endswith("running_mean") for k in sd) else "instance"
    weights.options.update(norm=norm, mask_channel=int(first.shape[1]) == 4)
    weights.state_dicts["generator"] = convert_official_state_dict(
        sd, "generator", source=str(generator_file)
    )
    weights.sources["generator"] = generator_file.name
    weights.files[str(generator_file)] = sha256_file(generator_file)
    if disc_file is None:
        weights.notes.append("no <epoch>_net_D.pth: the discriminator keeps its initial weights")
    else:
        dsd = _read_state_dict(disc_file, "a Shift-Net discriminator (NLayerDiscriminator)")
        weights.options["disc_spectral_norm"] = any(k.endswith("weight_orig") for k in dsd)
        weights.state_dicts["discriminator"] = convert_official_state_dict(
            dsd, "discriminator", source=str(disc_file)
        )
        weights.sources["discriminator"] = disc_file.name
        weights.files[str(disc_file)] = sha256_file(disc_file)
    return weights


@register_method
class ShiftNet(InpaintingModule):
    """Shift-Net: U-Net with the shift-connection layer, guidance loss, PatchGAN.

    The network configuration is a variant option: ``norm`` (``instance``, the repository
    default, or ``batch``, the paper-era pix2pix setting), ``mask_channel`` (the repository's 4th
    input channel) and ``disc_spectral_norm``.
    """

    contract = MethodContract(
        name="shiftnet",
        paper="Yan, Li, Li, Zuo, Shan, Shift-Net: Image Inpainting via Deep Feature "
        "Rearrangement, ECCV 2018",
        official_repo="Zhaoyi-Yan/Shift-Net_pytorch",
        build_nets=build_shiftnet_nets,
        variants=SHIFTNET_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=("generator",),
        size_multiple=256,
        min_size=256,
        sizes=lambda widths: (2 ** int(widths["num_downs"]),) * 2,
        losses={"l1": 100.0, "guidance": 1.0, "adversarial": 0.2},
        lr=2e-4,
        betas=(0.5, 0.999),
        d2g_lr=1.0,
        gan_loss="nsgan",
        value_range="[-1,1]",
        onnx=None,
        # lr 2e-4 (tiny, 64 px, batch 4): hole PSNR +1.0 dB after 20 batches, +1.4 after 40,
        # +2.0 after 60, +2.9 after 80 (0.3 s a batch on one CPU thread)
        learning=LearningCheck(batches=80, min_gain_db=2.0),
        official_reader=read_official_shiftnet,
        official_release="https://github.com/Zhaoyi-Yan/Shift-Net_pytorch#trained-models "
        "(download_models.sh: Google Drive, Paris StreetView centre/random-mask models of "
        "unet_shift_triple); files <epoch>_net_G.pth (+ <epoch>_net_D.pth) as "
        "models/shift_net/base_model.py save_networks writes them",
    )

    def __init__(self, variant: str = "full", **options: Any) -> None:
        super().__init__(variant, **options)
        # the configuration as attributes (the official importer checks the options it sets)
        self.norm = self.generator.norm
        self.mask_channel = self.generator.mask_channel
        self.disc_spectral_norm = has_spectral_norm(self.discriminator.model[0])

    # ------------------------------------------------------------------ losses
    def generator_terms(self, batch: dict[str, Any], feats: dict[str, torch.Tensor]) -> dict:
        """Unweighted G terms (adversarial added by :meth:`training_batch`)."""
        image, mask = batch["image"], batch["mask"]
        output = feats["output"]
        target = self.generator.guidance_target(image, mask)
        terms = {
            "l1": F.l1_loss(to_signed(output).float(), to_signed(image).float()),
            "guidance": guidance_loss(feats["decoder"], target, feats["hole"]),
        }
        return terms

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        feats = self.generator.features(image * (1.0 - mask), mask)
        output = feats["output"]
        d_loss, _ = self.discriminator_step("discriminator", image, output, scale=0.5)
        terms = self.generator_terms(batch, feats)
        terms["adversarial"], _ = self.generator_adversarial("discriminator", output)
        g_loss = sum(self.weights[k] * v for k, v in terms.items())
        self.optimize({"g": g_loss}, "generator", terms)
        logs = {f"g_{k}": v.detach() for k, v in terms.items()}
        logs.update(g=g_loss.detach(), d=d_loss.detach())
        return logs

    # ------------------------------------------------------------------ inference
    def inpaint_raw(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        return {"output": self.generator(image, mask)}

    def extra_run_notes(self) -> list[str]:
        g = self.generator
        mask = "image + mask channel" if g.mask_channel else "RGB only"
        return [f"Shift-Net generator: {g.norm} norm, {mask} input"]
