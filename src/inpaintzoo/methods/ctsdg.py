"""CTSDG (Guo, Yang, Huang, ICCV 2021) as a LightningModule.

"Conditional texture and structure dual generation": a two-stream partial-convolution generator
(texture from the masked image, structure from the masked edge + gray maps, each decoder starting
from the *other* stream's deepest feature), Bi-GFF fusion, CFA, and a discriminator that judges
the image (texture branch) and its edges (structure branch; a learned edge detector supplies the
edges of fake images). Facts from ``../shared/specs/ctsdg.md`` (xiefan-guo/ctsdg ``trainer.py``,
``criteria/loss.py``, ``options/train_options.py``):

* G loss = 60 L_hole + 10 L_valid + 0.1 L_perc + 250 L_style + 0.1 L_adv + 1 L_inter: the
  PConv-family terms (:class:`~inpaintzoo.losses.PConvLoss`: plain-mean hole/valid L1,
  perceptual/style on VGG16 pool1..pool3 of the output and of the composite, all on ``[-1, 1]``
  images without ImageNet normalisation), ``L_adv = BCE(D(O), 1) + BCE(edge_detector(O),
  Canny(Y))``, ``L_inter = BCE(projected_edge, Canny(Y)) + L1(projected_image, Y)``.
* D loss = BCE(D(Y), 1) + BCE(D(O), 0) + BCE(edge_detector(Y), Canny(Y)) +
  BCE(edge_detector(O), Canny(Y)), on the raw output.
* Per batch: generator step first (discriminator frozen), then the discriminator step.
* Adam, default betas (0.9, 0.999); lr 2e-4 for 300,000 batches, then fine-tuning at 5e-5 with
  every BatchNorm of the generator in eval mode (official ``freeze_ec_bn``) and new optimizers
  (the official fine-tune restarts from a checkpoint); discriminator at 0.1 x lr. The fine-tune
  length is not stated in the paper or code: 100,000 batches (25 % of a scaled run) is ours.

Differences (documented in docs/methods/ctsdg.md): gray and Canny are computed on the ``[0, 1]``
image (the official loader computes them on a wrapped-around uint8 copy of the normalised
image); at inference the Canny map of the known region is computed in test mode (no hole
content, no edges on the hole border), so the network never sees hole pixels.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.conventions import to_signed
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, Phase, Stage, register_method
from inpaintzoo.nets.ctsdg import CTSDG_VARIANTS, OFFICIAL_PARAM_COUNTS, build_ctsdg_nets
from inpaintzoo.structure import edge_precision_recall, rgb_to_gray

FREEZE_BN_CHOICES = ("generator", "encoder", "none")
_BOTH = ("generator", "discriminator")


def _bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


@register_method
class CTSDG(InpaintingModule):
    """CTSDG: two-stream texture/structure generator, texture+structure discriminator.

    Args (beyond :class:`InpaintingModule`'s and the contract's options):
        finetune_freeze_bn: BatchNorms put in eval mode while fine-tuning: ``generator`` (all,
            the official ``freeze_ec_bn``), ``encoder`` (the two encoders only, as PConv) or
            ``none``.
    """

    contract = MethodContract(
        name="ctsdg",
        paper="Guo, Yang, Huang, Image Inpainting via Conditional Texture and Structure Dual "
        "Generation, ICCV 2021",
        official_repo="Xiefan-Guo/CTSDG",
        build_nets=build_ctsdg_nets,
        variants=CTSDG_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=("generator",),
        size_multiple=128,
        min_size=128,
        sizes=lambda widths: (2 ** int(widths["num_levels"]),) * 2,
        losses={
            "hole": 60.0,
            "valid": 10.0,
            "perceptual": 0.1,
            "style": 250.0,
            "adversarial": 0.1,
            "intermediate": 1.0,
        },
        lr=2e-4,
        betas=(0.9, 0.999),
        d2g_lr=0.1,
        gan_loss="nsgan",
        stages={
            "train": Stage("train", trains=_BOTH),
            "finetune": Stage(
                "fine-tune, generator BatchNorms frozen",
                trains=_BOTH,
                needs=("generator",),
                fresh_optimizers=True,
                freeze_batch_norms=True,
            ),
        },
        paper_schedule=(
            Phase("train", 0.75, batches=300_000, lr=2e-4),
            Phase("finetune", 0.25, batches=100_000, lr=5e-5),
        ),
        structure_inputs=("gray", "edge"),
        structure_params={"canny_sigma": 2.0},
        vgg_terms=("perceptual", "style"),
        value_range="[-1,1]",
        onnx="its CFA pastes patches back with F.fold (col2im), which the TorchScript ONNX "
        "exporter translates only for a constant image size",
        # lr 2e-4: measured +0.0 dB after 30 batches, +3.1 after 60, +6.1 after 100
        learning=LearningCheck(batches=60, min_gain_db=2.0),
    )
    vgg_attribute = "pconv_loss"

    def __init__(self, variant: str = "full", *, finetune_freeze_bn: str = "generator", **options):
        super().__init__(variant, **options)
        if finetune_freeze_bn not in FREEZE_BN_CHOICES:
            raise ValueError(
                f"unknown finetune_freeze_bn {finetune_freeze_bn!r}; choose one of "
                f"{FREEZE_BN_CHOICES}"
            )
        self.finetune_freeze_bn = finetune_freeze_bn

    # ------------------------------------------------------------------ stages
    def frozen_batch_norms(self) -> list[nn.Module]:
        """The BatchNorms held in eval mode while fine-tuning (``finetune_freeze_bn``)."""
        if self.finetune_freeze_bn == "none":
            return []
        roots: list[nn.Module] = [self.generator]
        if self.finetune_freeze_bn == "encoder":
            roots = [self.generator.texture_encoder, self.generator.structure_encoder]
        return [
            m for r in roots for m in r.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]

    # ------------------------------------------------------------------ losses
    def generator_losses(
        self, batch: dict[str, Any], out: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Unweighted G terms for a generator output ``out``."""
        image, mask, gray, edge = batch["image"], batch["mask"], batch["gray"], batch["edge"]
        output = out["output"]
        # the official terms live in [-1, 1]: L1 differences are twice those in [0, 1]
        terms = dict(self.pconv_loss(to_signed(output), to_signed(image), mask))
        adversarial, (_, edge_logits) = self.generator_adversarial("discriminator", (output, gray))
        terms["adversarial"] = adversarial + _bce(edge_logits, edge)
        terms["intermediate"] = _bce(out["projected_edge_logits"], edge) + F.l1_loss(
            to_signed(out["projected_image"]).float(), to_signed(image).float()
        )
        return terms

    def discriminator_extra(self, edge: torch.Tensor):
        """The edge-detector terms of the discriminator loss (real and fake edges vs Canny)."""
        return lambda real_out, fake_out: _bce(real_out[1], edge) + _bce(fake_out[1], edge)

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask, gray, edge = batch["image"], batch["mask"], batch["gray"], batch["edge"]
        out = self.generator(image * (1.0 - mask), edge * (1.0 - mask), gray, mask)
        terms = self.generator_losses(batch, out)
        g_loss = sum(self.weights[k] * v for k, v in terms.items())
        self.optimize({"g": g_loss}, "generator", terms)
        d_loss, _ = self.discriminator_step(
            "discriminator",
            (image, gray, edge),
            (out["output"], gray),
            extra=self.discriminator_extra(edge),
        )
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
        gray = rgb_to_gray(image)
        if edge is None:
            edge = self.edge_map(gray, mask=mask)
        edge_in = edge * (1.0 - mask)
        out = self.generator(image, edge_in, gray, mask)
        return {
            "output": out["output"],
            "projected_image": out["projected_image"],
            "edge": out["projected_edge"],
            "input_edge": edge_in,
        }

    def eval_logs(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        precision, recall = edge_precision_recall(out["edge"], batch["edge"], mask=batch["mask"])
        return {"edge_precision": precision, "edge_recall": recall}

    def extra_sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        # black lines on white, as in the paper's figures
        return {"input edges": 1.0 - out["input_edge"], "projected edges": 1.0 - out["edge"]}
