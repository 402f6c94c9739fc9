"""RFR-Net (Li, Wang, Zhang, Du, Tao, CVPR 2020) as a LightningModule.

"Recurrent feature reasoning": partial convolutions shrink the hole a ring at a time, a
U-Net with knowledge-consistent attention infers the newly valid ring, six times with shared
weights, and the recurrences are merged. Facts from ``../shared/specs/rfr.md`` (official
jingyuanli001/RFR-Inpainting ``model.py``, ``run.py``, ``README.md``):

* one generator, no discriminator; L = 1 L_valid + 6 L_hole + 0.05 L_perc + 120 L_style +
  0.1 L_tv: the PConv-family terms (:class:`~inpaintzoo.losses.PConvLoss`: plain-mean L1 on the
  valid and hole pixels; perceptual and style (Gram / (C H W)) on VGG16 pool1..pool3 of the
  output and of the composite, ``[0, 1]`` images without ImageNet normalisation) and the total
  variation of the composite times the hole (``TV_loss(comp * (1 - M))``: anisotropic L1
  means over the whole image, so the jump at the hole border counts);
* Adam lr 2e-4, default betas; fine-tuning at 5e-5 with **every** BatchNorm of the network in
  eval mode (``RFRNet.train(finetune=True)``) and a new optimizer; README lengths for Paris
  StreetView 400,000 + 200,000 batches of 6 (CelebA 350k + 150k, Places2 2M + 1M);
* 6 recurrences (``iterations``, a config value; the parameters do not depend on it).

Official weights: :func:`read_official_rfr` reads the released checkpoint (``utils/io.py``
``save_ckpt``: ``{"n_iter", "generator", "optimizer_G"}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from inpaintzoo.losses import total_variation
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, Phase, Stage, register_method
from inpaintzoo.nets.rfr import (
    OFFICIAL_ITERATIONS,
    OFFICIAL_PARAM_COUNTS,
    RFR_VARIANTS,
    SIZE_MULTIPLE,
    build_rfr_nets,
    convert_official_state_dict,
)
from inpaintzoo.official.errors import OfficialWeightsError, describe_keys
from inpaintzoo.official.importers import OfficialWeights, load_weights_file, single_weights_file
from inpaintzoo.utils.io import sha256_file

__all__ = ["RFRNet", "read_official_rfr"]

_SIGNATURE = "RFRModule.att.combiner.weight"


def read_official_rfr(path: str | Path) -> OfficialWeights:
    """Read the authors' RFR-Net release: a checkpoint ``{"n_iter", "generator",
    "optimizer_G"}`` (``utils/io.py`` ``save_ckpt``; ``test`` reads ``["generator"]``), or a
    folder holding exactly one; a bare ``RFRNet`` state dict is accepted too.

    Returns the converted generator state dict (:func:`inpaintzoo.nets.rfr.
    convert_official_state_dict`, by name) with the file's SHA-256.

    Raises:
        FileNotFoundError: no such file or folder.
        OfficialWeightsError: unsafe or damaged file, no RFR-Net generator in it, or keys that
            do not belong to ``RFRNet`` (named).
    """
    path = Path(path)
    file = single_weights_file(
        path, "the RFR-Net checkpoint file (e.g. g_400000.pth, written by utils/io.py save_ckpt)"
    )
    payload = load_weights_file(file)
    notes: list[str] = []
    if isinstance(payload, Mapping) and isinstance(payload.get("generator"), Mapping):
        state, key = dict(payload["generator"]), "generator"
    elif isinstance(payload, Mapping) and any(str(k).endswith(_SIGNATURE) for k in payload):
        state, key = dict(payload), None
        notes.append(f"{file.name} is a bare RFRNet state dict (no 'generator' key)")
    else:
        top = list(payload) if isinstance(payload, Mapping) else []
        raise OfficialWeightsError(
            f"{file} is not an official RFR-Net checkpoint: expected a dict with a 'generator' "
            f"state dict (utils/io.py save_ckpt), found "
            + (f"top-level keys {describe_keys(map(str, top))}" if top else type(payload).__name__),
            str(file),
            [str(k) for k in top],
        )
    if not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise OfficialWeightsError(f"{file}: 'generator' is not a state dict of tensors", str(file))
    if not any(k.endswith(_SIGNATURE) for k in state):
        raise OfficialWeightsError(
            f"{file} does not hold an RFRNet generator (no {_SIGNATURE!r}; keys "
            f"{describe_keys(list(state))}): check that you passed the RFR-Net release",
            str(file),
            list(state)[:8],
        )
    source = f"{file}[{key!r}]" if key else str(file)
    converted = convert_official_state_dict(state, source=source)
    return OfficialWeights(
        method="rfr",
        path=path,
        files={str(file): sha256_file(file)},
        state_dicts={"generator": converted},
        sources={"generator": f"{file.name}[{key!r}]" if key else file.name},
        notes=notes,
    )


@register_method
class RFRNet(InpaintingModule):
    """RFR-Net: recurrent partial convolutions + feature reasoning with KCA, one generator.

    Args (beyond :class:`InpaintingModule`'s and the contract's options):
        iterations: recurrences of the area-identification / feature-reasoning loop (the
            official 6).
    """

    contract = MethodContract(
        name="rfr",
        paper="Li, Wang, Zhang, Du, Tao, Recurrent Feature Reasoning for Image Inpainting, "
        "CVPR 2020",
        official_repo="jingyuanli001/RFR-Inpainting",
        build_nets=build_rfr_nets,
        variants=RFR_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=("generator",),
        size_multiple=SIZE_MULTIPLE,
        min_size=64,
        losses={"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1},
        lr=2e-4,
        betas=(0.9, 0.999),
        gan_loss="nsgan",  # unused: RFR-Net has no discriminator
        stages={
            "train": Stage("train", trains=("generator",)),
            "finetune": Stage(  # every BatchNorm, as the official RFRNet.train(finetune=True)
                "fine-tune, every BatchNorm frozen",
                trains=("generator",),
                needs=("generator",),
                fresh_optimizers=True,
                freeze_batch_norms=True,
            ),
        },
        paper_schedule=(
            Phase("train", 2 / 3, batches=400_000, lr=2e-4),
            Phase("finetune", 1 / 3, batches=200_000, lr=5e-5),
        ),
        vgg_terms=("perceptual", "style"),
        value_range="[0,1]",
        # lr 2e-4, tiny, 64 px, batch 4 (train phase): measured +1.2 dB after 20 batches,
        # +3.8 after 30, +6.8 after 40, +9.3 after 60 (hole PSNR of the composite, VGG off)
        learning=LearningCheck(batches=40, min_gain_db=2.0),
        official_reader=read_official_rfr,
        official_release="https://drive.google.com/drive/folders/"
        "1EbRSL6SlJqeMliT9qU8V5g0idJqvirZr (README: Paris StreetView and CelebA); one "
        "checkpoint per dataset as utils/io.py save_ckpt writes it: "
        "{'n_iter', 'generator', 'optimizer_G'}",
    )
    vgg_attribute = "pconv_loss"

    def __init__(self, variant: str = "full", *, iterations: int = OFFICIAL_ITERATIONS, **options):
        super().__init__(variant, **options)
        if int(iterations) < 1:
            raise ValueError(
                f"iterations must be >= 1 (official: {OFFICIAL_ITERATIONS}), got {iterations}"
            )
        self.iterations = int(iterations)
        self.generator.iterations = self.iterations

    # ------------------------------------------------------------------ losses
    def generator_losses(
        self, output: torch.Tensor, image: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Unweighted terms on ``[0, 1]`` images (the official range)."""
        terms = dict(self.pconv_loss(output, image, mask))
        # official TV_loss(comp * (1 - M_valid)): the composite is the output in the hole
        terms["tv"] = total_variation(output * mask)
        return terms

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        output = self.generator(image * (1.0 - mask), mask)
        terms = self.generator_losses(output, image, mask)
        g_loss = sum(self.weights[k] * v for k, v in terms.items())
        self.optimize({"g": g_loss}, "generator", terms)
        logs = {f"g_{k}": v.detach() for k, v in terms.items()}
        logs["g"] = g_loss.detach()
        logs["finetune"] = torch.tensor(float(self.current_stage() == "finetune"))
        return logs

    # ------------------------------------------------------------------ inference
    def inpaint_raw(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        """``image`` arrives with the hole zeroed (see ``inpaint``)."""
        return {"output": self.generator(image, mask)}
