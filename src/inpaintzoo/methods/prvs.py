"""PRVS (Li et al., ICCV 2019) as a LightningModule.

"Progressive Reconstruction of Visual Structure for Image Inpainting": a partial-convolution
U-Net whose two outer encoder levels and two outer decoder levels are visual structure
reconstruction (VSR) layers, growing the Canny edge map ring by ring with the features; the
reconstructed edges meet an edge discriminator (EdgeConnect's SN PatchGAN on ``[edge, gray]``).
Facts from ``../shared/specs/prvs.md`` (jingyuanli001/PRVS-Image-Inpainting ``model.py``,
``run.py``, ``dataset.py``):

* G loss = 50 L_valid + 50 L_hole + 0.05 L_perc + 150 L_style + 0.1 L_tv + 0.1 L_adv: the
  PConv-family terms (:class:`~inpaintzoo.losses.PConvLoss`: plain-mean L1s, VGG16 pool1..pool3 of
  the output and of the composite, Gram / (C H W), ``[0, 1]`` images without ImageNet
  normalisation); ``L_tv`` = total variation of ``composite * hole`` (plain means of the
  neighbour differences over the whole image, as ``model.py`` ``TV_loss``);
  ``L_adv = BCE(D([edge, gray]), 1) + BCE(D([edge_small, gray_small]), 1)``.
* D loss = sum over the two edge scales of ``(BCE(D(real), 1) + BCE(D(fake), 0)) / 2`` with real
  edges ``clamp(4 resize(Canny(Y)), 0, 1)`` (nearest) beside the resized gray image.
* Per batch: generator step, then discriminator step (``update_G``, ``update_D``); Adam default
  betas, G 2e-4, D 2e-5. Fine-tune (``--finetune``): G 5e-5, D 5e-6, new optimizers, every
  BatchNorm of the encoder in eval mode (``PRVSNet.train(finetune=True)``: names containing
  ``enc``). Neither the code nor the paper states the phase lengths: 75 % / 25 % of the run is
  our choice.
* Canny on the gray image, sigma 2 at 256 px (``dataset.py``), of the whole image in training.

Difference (docs/methods/prvs.md): at inference the known region's Canny map is computed in test
mode (no hole content, no edges on the hole border), so the network never sees hole pixels; the
official test feeds the full image's Canny map masked afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from inpaintzoo.losses import total_variation
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, Phase, Stage, register_method
from inpaintzoo.nets.prvs import (
    OFFICIAL_PARAM_COUNTS,
    PRVS_VARIANTS,
    build_prvs_nets,
    convert_official_discriminator_state_dict,
    convert_official_state_dict,
)
from inpaintzoo.structure import rgb_to_gray
from inpaintzoo.utils.io import sha256_file

__all__ = ["PRVS", "read_official_prvs"]

_BOTH = ("generator", "edge_discriminator")

OFFICIAL_RELEASE = (
    "none published (jingyuanli001/PRVS-Image-Inpainting: the README links no weights, issue #3 "
    "asks for them); the format run.py writes: g_<iter>.pth {'n_iter', 'generator', "
    "'optimizer_G'} and d_<iter>.pth {'n_iter', 'discriminator', 'optimizer_D'}"
)


def _latest(folder: Path, prefix: str) -> Path | None:
    """``<prefix>_<iter>.pth`` with the highest iteration in ``folder`` (``None`` if none)."""
    numbered = []
    for p in folder.glob(f"{prefix}_*.pth"):
        found = re.fullmatch(rf"{prefix}_(\d+)\.pth", p.name)
        if found:
            numbered.append((int(found[1]), p))
    return max(numbered)[1] if numbered else None


def _network(payload: Any, key: str, file: Path, marker: str, what: str) -> dict:
    """The state dict ``payload[key]`` (or ``payload`` itself when it is a bare state dict),
    checked to hold a key starting with ``marker``."""
    from inpaintzoo.official.errors import OfficialWeightsError, describe_keys
    from inpaintzoo.official.importers import guess_network

    inner = payload.get(key, payload) if isinstance(payload, Mapping) else payload
    ok = (
        isinstance(inner, Mapping)
        and bool(inner)
        and all(isinstance(k, str) and torch.is_tensor(v) for k, v in inner.items())
        and any(k.removeprefix("module.").startswith(marker) for k in inner)
    )
    if ok:
        return dict(inner)
    top = [str(k) for k in payload] if isinstance(payload, Mapping) else []
    nested = [
        str(k) for v in (payload.values() if top else ()) if isinstance(v, Mapping) for k in v
    ]
    found = guess_network(top) or guess_network(nested)
    hint = f"; it looks like {found}" if found else ""
    raise OfficialWeightsError(
        f"{file} is not {what} (a dict with {key!r} holding a state dict with {marker}* keys): "
        f"found keys {describe_keys(top) or type(payload).__name__}{hint}",
        str(file),
        top[:8],
    )


def read_official_prvs(path: str | Path):
    """Read PRVS weights in the official format (``g_<iter>.pth``, optionally ``d_<iter>.pth``;
    a folder gives the highest iteration, a file the generator checkpoint itself) and convert
    them by name (:mod:`inpaintzoo.nets.prvs`).

    Returns:
        :class:`inpaintzoo.official.importers.OfficialWeights` with the ``generator`` and, when a
        discriminator checkpoint is there, the ``edge_discriminator``.

    Raises:
        FileNotFoundError: no such file or folder, or no ``g_<iter>.pth`` in it.
        OfficialWeightsError: unsafe or damaged file, another network's weights, unknown keys.
    """
    from inpaintzoo.official.importers import OfficialWeights, load_weights_file

    path = Path(path)
    if path.is_dir():
        g_file = _latest(path, "g")
        if g_file is None:
            present = sorted(p.name for p in path.iterdir() if p.is_file())
            raise FileNotFoundError(
                f"{path} holds no g_<iter>.pth (the PRVS generator checkpoint run.py saves); "
                f"found: {', '.join(present[:12]) or 'no files'}"
            )
        same = path / f"d_{g_file.stem[2:]}.pth"
        d_file = same if same.is_file() else _latest(path, "d")
    elif path.is_file():
        g_file = path
        sibling = path.with_name(f"d_{path.stem[2:]}.pth") if path.stem.startswith("g_") else None
        d_file = sibling if sibling is not None and sibling.is_file() else None
    else:
        raise FileNotFoundError(f"PRVS official weights (g_<iter>.pth) not found: {path}")
    weights = OfficialWeights("prvs", path, {}, {}, {})
    payload = load_weights_file(g_file)
    generator = _network(payload, "generator", g_file, "enc_1.", "a PRVS generator checkpoint")
    weights.state_dicts["generator"] = convert_official_state_dict(generator, source=str(g_file))
    weights.sources["generator"] = f"{g_file.name}['generator']"
    weights.files[str(g_file)] = sha256_file(g_file)
    if d_file is None:
        weights.notes.append("no d_<iter>.pth: the edge discriminator keeps its initial weights")
        return weights
    payload = load_weights_file(d_file)
    disc = _network(
        payload, "discriminator", d_file, "conv1.", "a PRVS edge-discriminator checkpoint"
    )
    weights.state_dicts["edge_discriminator"] = convert_official_discriminator_state_dict(
        disc, source=str(d_file)
    )
    weights.sources["edge_discriminator"] = f"{d_file.name}['discriminator']"
    weights.files[str(d_file)] = sha256_file(d_file)
    return weights


def _resized(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` at ``like``'s size, nearest (``F.interpolate``'s default, as the official code)."""
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


@register_method
class PRVS(InpaintingModule):
    """PRVS: partial-conv U-Net with VSR layers and an edge discriminator."""

    contract = MethodContract(
        name="prvs",
        paper="Li, He, Zhang, Du, Tao, Progressive Reconstruction of Visual Structure for Image "
        "Inpainting, ICCV 2019",
        official_repo="jingyuanli001/PRVS-Image-Inpainting",
        build_nets=build_prvs_nets,
        variants=PRVS_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=("generator",),
        size_multiple=256,
        min_size=256,
        sizes=lambda widths: (2 ** int(widths["num_levels"]),) * 2,
        losses={
            "valid": 50.0,
            "hole": 50.0,
            "perceptual": 0.05,
            "style": 150.0,
            "tv": 0.1,
            "adversarial": 0.1,
        },
        lr=2e-4,
        betas=(0.9, 0.999),
        d2g_lr=0.1,
        gan_loss="nsgan",
        stages={
            "train": Stage("train", trains=_BOTH),
            "finetune": Stage(
                "fine-tune, encoder BatchNorms frozen",
                trains=_BOTH,
                needs=("generator",),
                fresh_optimizers=True,
                freeze_batch_norms=True,
            ),
        },
        paper_schedule=(
            Phase("train", 0.75, lr=2e-4),
            Phase("finetune", 0.25, lr=5e-5),
        ),
        structure_inputs=("gray", "edge"),
        structure_params={"canny_sigma": 2.0},
        vgg_terms=("perceptual", "style"),
        value_range="[0,1]",
        onnx=None,
        # lr 2e-4: measured +1.8 dB after 20 batches, +8.5 after 40, +14.1 after 60
        learning=LearningCheck(batches=40, min_gain_db=2.0),
        official_reader=read_official_prvs,
        official_release=OFFICIAL_RELEASE,
    )
    vgg_attribute = "pconv_loss"

    def __init__(self, variant: str = "full", **options):
        super().__init__(variant, **options)

    # ------------------------------------------------------------------ stages
    def frozen_batch_norms(self) -> list[torch.nn.Module]:
        """The encoder's BatchNorms (held in eval mode while fine-tuning, official
        ``freeze_enc_bn``)."""
        return list(self.generator.encoder_batch_norms())

    # ------------------------------------------------------------------ losses
    def generator_losses(
        self, batch: dict[str, Any], out: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Unweighted G terms for a generator output ``out``."""
        image, mask, gray = batch["image"], batch["mask"], batch["gray"]
        output = out["output"]
        terms = dict(self.pconv_loss(output, image, mask))
        terms["tv"] = total_variation(output * mask)  # = composite * hole
        adversarial = output.new_zeros((), dtype=torch.float32)
        for edge in (out["edge"], out["edge_small"]):
            fake = torch.cat([edge, _resized(gray, edge)], dim=1)
            term, _ = self.generator_adversarial("edge_discriminator", fake)
            adversarial = adversarial + term
        terms["adversarial"] = adversarial
        return terms

    def discriminator_update(
        self, batch: dict[str, Any], out: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """One step of the edge discriminator on both edge scales (summed, as ``get_d_loss``)."""
        gray, edge = batch["gray"], batch["edge"]
        disc = self.edge_discriminator
        loss = edge.new_zeros((), dtype=torch.float32)
        for fake_edge in (out["edge_small"], out["edge"]):
            small_gray = _resized(gray, fake_edge)
            real = torch.cat([(_resized(edge, fake_edge) * 4.0).clamp(0.0, 1.0), small_gray], 1)
            fake = torch.cat([fake_edge.detach(), small_gray], dim=1)
            loss = loss + 0.5 * self.adversarial_loss.discriminator_loss(disc(real), disc(fake))
        self.optimize({"edge_discriminator": loss}, "edge_discriminator")
        return loss

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask, edge = batch["image"], batch["mask"], batch["edge"]
        valid = 1.0 - mask
        out = self.generator(image * valid, edge * valid, mask)
        terms = self.generator_losses(batch, out)
        g_loss = sum(self.weights[k] * v for k, v in terms.items())
        self.optimize({"g": g_loss}, "generator", terms)
        d_loss = self.discriminator_update(batch, out)
        logs = {f"g_{k}": v.detach() for k, v in terms.items()}
        logs.update(g=g_loss.detach(), d=d_loss.detach())
        logs["finetune"] = torch.tensor(float(self.current_stage() == "finetune"))
        return logs

    # ------------------------------------------------------------------ inference
    def inpaint_raw(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        edge: torch.Tensor | None = None,
        **extras: Any,
    ) -> dict:
        """``image`` arrives with the hole zeroed (see ``inpaint``).

        ``edge``: an edge map to use in the known region instead of the test-mode Canny of the
        known pixels (only its known part reaches the network).
        """
        if edge is None:
            edge = self.edge_map(rgb_to_gray(image), mask=mask)
        edge_in = edge * (1.0 - mask)
        out = self.generator(image, edge_in, mask)
        return {
            "output": out["output"],
            "edge": out["edge"].clamp(0.0, 1.0),
            "input_edge": edge_in,
        }

    def extra_sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        # black lines on white, as in the paper's figures
        return {"input edges": 1.0 - out["input_edge"], "reconstructed edges": 1.0 - out["edge"]}
