"""PConv (Liu et al., ECCV 2018) as a LightningModule.

"Image Inpainting for Irregular Holes Using Partial Convolutions": a U-Net whose every
convolution is a partial convolution (:mod:`inpaintzoo.nets.pconv`), trained with the
PConv loss alone (no discriminator). Facts from ``../shared/specs/pconv.md`` §2-§4 (paper; the
NVIDIA/partialconv layer and loss; the unofficial naoto0804/pytorch-inpainting-with-partial-conv
``train.py``, ``loss.py``, ``opt.py`` for what the paper leaves open). PConv's network has **no
official release** (NVIDIA ships only the layer and a VGG loss), so there is no weight importer.

* Loss (:class:`~inpaintzoo.losses.PConvLoss`): ``1 valid + 6 hole + 0.05 perceptual + 120 style
  + 0.1 tv``: hole/valid L1 as plain means; perceptual and style (Gram / (C H W)) on VGG16
  ``pool1..pool3`` of the output and of the composite, L1; total variation of the composite
  over ``P``, the hole dilated by one pixel (the paper's region; ``tv_region: image`` is
  naoto0804's whole-image TV).
* Working space (``normalization``): ``imagenet`` (default) = the network's input and output
  and every loss term in ImageNet-normalised space ``(x - mean) / std``, as naoto0804's full
  model (its loader normalises, its loss compares normalised images) and as NVIDIA's loss (it
  normalises both images before its L1 and VGG terms); ``none`` = ``[0, 1]``. Either way the
  VGG sees ImageNet-normalised images, what its torchvision weights expect (explicit here: the
  extractor's ``normalize_input`` is on exactly when the working space is ``[0, 1]``).
* Adam (default betas), lr 2e-4; then fine-tuning at 5e-5 with the encoder's BatchNorms in eval
  mode (running statistics frozen, affine parameters still trained; the paper's fix for holes
  biasing BN statistics; naoto0804 ``freeze_enc_bn``). naoto0804's fine-tune resumes its Adam
  state, so the stage keeps the optimiser. Lengths: the paper gives none in iterations
  (training days); naoto0804's released model trained 500,000 + 500,000 iterations: the schedule
  here (50 / 50 % of a scaled run).
* Masks: 1 = hole at our boundary, converted once to the partial convolutions' 1 = valid inside
  :class:`~inpaintzoo.nets.pconv.PConvUNet`.
"""

from __future__ import annotations

from typing import Any

import torch

from inpaintzoo.losses import PConvLoss, VGGFeatures, total_variation
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, Phase, Stage, register_method
from inpaintzoo.nets.pconv import OFFICIAL_PARAM_COUNTS, PCONV_VARIANTS, build_pconv_nets

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "NORMALIZATIONS", "PConv", "TV_REGIONS"]

NORMALIZATIONS = ("imagenet", "none")
TV_REGIONS = ("hole", "image")
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # naoto0804 opt.py MEAN / NVIDIA loss.py
IMAGENET_STD = (0.229, 0.224, 0.225)
VGG_LAYERS = ("pool1", "pool2", "pool3")
_G = ("generator",)


@register_method
class PConv(InpaintingModule):
    """PConv-Net: partial-convolution U-Net, PConv loss, BN-frozen fine-tuning.

    Args (beyond :class:`InpaintingModule`'s and the contract's options):
        normalization: the working space of the network and the loss: ``imagenet``
            (naoto0804, NVIDIA's loss) or ``none`` (``[0, 1]``).
        tv_region: ``hole`` (the paper: the hole dilated by one pixel) or ``image``
            (naoto0804: the whole composite).
    """

    contract = MethodContract(
        name="pconv",
        paper="Liu, Reda, Shih, Wang, Tao, Catanzaro, Image Inpainting for Irregular Holes "
        "Using Partial Convolutions, ECCV 2018",
        official_repo="NVIDIA/partialconv",
        build_nets=build_pconv_nets,
        variants=PCONV_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=_G,
        size_multiple=128,
        min_size=128,
        sizes=lambda widths: (2 ** int(widths["num_levels"]),) * 2,
        losses={"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1},
        lr=2e-4,
        betas=(0.9, 0.999),  # Adam defaults (naoto0804 passes none)
        gan_loss="nsgan",  # unused: PConv has no discriminator
        stages={
            "train": Stage("train", trains=_G),
            "finetune": Stage(
                "fine-tune, encoder BatchNorms frozen", trains=_G, needs=_G, freeze_batch_norms=True
            ),
        },
        paper_schedule=(
            Phase("train", 0.5, batches=500_000, lr=2e-4),
            Phase("finetune", 0.5, batches=500_000, lr=5e-5),
        ),
        vgg_terms=("perceptual", "style"),
        value_range="ImageNet-normalised",
        notes=(
            "PConv's network has no official release: the U-Net is the paper's as written "
            "out by naoto0804/pytorch-inpainting-with-partial-conv",
        ),
        # stage train at the recipe's lr 2e-4: measured +10.8 dB after 30 batches, +14.0 after
        # 60 (from 7.6 dB: the untrained U-Net's output level is far off in ImageNet space)
        learning=LearningCheck(batches=30, min_gain_db=5.0),
    )
    vgg_attribute = "pconv_loss"

    def __init__(
        self,
        variant: str = "full",
        *,
        normalization: str = "imagenet",
        tv_region: str = "hole",
        **options: Any,
    ) -> None:
        super().__init__(variant, **options)
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown PConv normalization {normalization!r}; choose one of {NORMALIZATIONS}"
            )
        if tv_region not in TV_REGIONS:
            raise ValueError(f"unknown PConv tv_region {tv_region!r}; choose one of {TV_REGIONS}")
        self.normalization = normalization
        self.tv_region = tv_region
        scale = normalization == "imagenet"
        mean = torch.tensor(IMAGENET_MEAN if scale else (0.0, 0.0, 0.0)).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD if scale else (1.0, 1.0, 1.0)).view(1, 3, 1, 1)
        self.register_buffer("space_mean", mean, persistent=False)
        self.register_buffer("space_std", std, persistent=False)
        self._no_vgg_loss = PConvLoss(terms=self._plain_terms())

    # ------------------------------------------------------------------ working space
    def to_space(self, image: torch.Tensor) -> torch.Tensor:
        """``[0, 1]`` image -> the working space (``(x - mean) / std`` for ``imagenet``)."""
        return (image - self.space_mean.to(image.dtype)) / self.space_std.to(image.dtype)

    def from_space(self, x: torch.Tensor) -> torch.Tensor:
        """The working space -> ``[0, 1]`` units (not clamped)."""
        return x * self.space_std.to(x.dtype) + self.space_mean.to(x.dtype)

    # ------------------------------------------------------------------ losses
    def _plain_terms(self) -> tuple[str, ...]:
        return ("hole", "valid") + (("tv",) if self.tv_region == "hole" else ())

    @property
    def pconv_loss(self) -> PConvLoss:
        """The PConv loss module: with VGG16 pool1..pool3 (ImageNet-normalised input) when the
        VGG terms are on, else the L1 (and hole TV) terms alone."""

        def build() -> PConvLoss:
            terms = self._plain_terms() + tuple(
                t for t in ("perceptual", "style") if self.weights[t]
            )
            extractor = VGGFeatures(
                "vgg16",
                VGG_LAYERS,
                weights=self.backbone_weights(),
                normalize_input=self.normalization == "none",
            )
            return PConvLoss(terms=terms, extractor=extractor)

        built = self.lazy_vgg(build)
        return built if built is not None else self._no_vgg_loss

    def generator_losses(
        self, output: torch.Tensor, image: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Unweighted terms for the network ``output`` and ground truth ``image``, both in the
        working space; ``mask`` 1 = hole."""
        terms = dict(self.pconv_loss(output, image, mask))
        if self.tv_region == "image":  # naoto0804: TV of the whole composite
            terms["tv"] = total_variation(output * mask + image * (1.0 - mask))
        return terms

    # ------------------------------------------------------------------ training
    def frozen_batch_norms(self) -> list[torch.nn.Module]:
        """The encoder's BatchNorms (held in eval mode while fine-tuning; naoto0804
        ``freeze_enc_bn``)."""
        return list(self.generator.encoder_batch_norms())

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        target = self.to_space(image)
        output = self.generator(target, mask)
        terms = self.generator_losses(output, target, mask)
        loss = sum(self.weights[k] * v for k, v in terms.items())
        self.optimize({"g": loss}, "generator", terms)
        logs = {f"g_{k}": v.detach() for k, v in terms.items()}
        logs["g"] = loss.detach()
        logs["finetune"] = torch.tensor(float(self.current_stage() == "finetune"))
        return logs

    # ------------------------------------------------------------------ inference
    def inpaint_raw(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        """``image`` arrives with the hole zeroed; the network never reads the hole anyway."""
        return {"output": self.from_space(self.generator(self.to_space(image), mask))}

    def extra_run_notes(self) -> list[str]:
        notes = []
        if self.normalization != "imagenet":
            notes.append("network and losses in [0, 1] (normalization=none), not ImageNet space")
        if self.tv_region != "hole":
            notes.append("total variation over the whole composite (tv_region=image, naoto0804)")
        return notes
