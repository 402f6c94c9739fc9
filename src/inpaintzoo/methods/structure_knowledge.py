"""Structure knowledge (Yang, Qi, Shi, AAAI 2020) as a LightningModule.

"Learning to Incorporate Structure Knowledge for Image Inpainting": one encoder-decoder
generator, trained multi-task, predicts at 1/4, 1/2 and full scale both the RGB image and its
6-channel Sobel gradient map; the structure features are embedded back into the decoder; a
pyramid structure loss supervises the gradient maps with extra weight on Canny edges; a pooled
non-local attention block sits at each decoder scale; one SN PatchGAN with hinge loss.
Facts from ../shared/specs/structure_knowledge.md (official TF code YoungGod/sturcture-inpainting,
``src/inpaint_model.py``, ``src/loss.py``, ``src/inpaint_config.yml``):

* Inputs (11 ch): ``[x*(1-m), (1-edge)*(1-m)+m, m, sobel(x)*(1-m)]``, ``x`` in ``[-1, 1]``,
  Sobel layout ``[R_dy, R_dx, G_dy, G_dx, B_dy, B_dx]`` of the ``[-1, 1]`` image with reflect
  borders (TF ``sobel_edges``), Canny sigma 1.5 at 256 px (``canny_sigma``).
* Generator loss (all on ``[-1, 1]`` images, as the official code):
  ``l1_hole + l1_valid + perceptual * (content(C) + content(out)) + style * (style(C) +
  style(out)) + 0.4 * hinge_G(D(C)) + pyramid structure loss`` with ``C = out*m + x*(1-m)``;
  ``l1_hole = sum(m |out - x|) / sum(m)`` (sum over the 3 channels, divided by the number of
  hole pixels), ``l1_valid`` likewise on ``1 - m``. Content: ``0.2 * MSE`` of VGG19
  relu1_1..relu5_1; style: ``0.2 * sum((Gram_y - Gram)^2) / (N H W C)`` on the same layers,
  ``Gram = F^T F / (H W C)``; weights 0.1 and 250 (``perceptual_weight``/``style_weight``, each
  applied to both the composite and the raw output). Image L1 at 1/4 and 1/2 scale exists in
  the code with weight 0 (``multiscale_l1_weight``).
* Discriminator: hinge, ``mean(relu(1 - D(y))) + mean(relu(1 + D(C)))``.
* Adam, lr 1e-5 for G and D (released config), betas (0, 0.9); the official D and G updates
  are computed from one forward pass (simultaneous). Here the generator steps first (its loss
  uses D before D's step), then D steps on the same, detached composite: the same gradients.

Inference (``inpaint_raw``) sees only the known pixels: the edge input is the Canny map of the
known region (test mode as EdgeConnect: no edges in or on the border of the hole) and the
gradient input is the Sobel map of the hole-zeroed image with the 1-pixel ring whose 3x3 Sobel
support touches the hole set to 0. In training the official inputs (Canny and Sobel of the full
image, masked) are used. See docs/methods/structure_knowledge.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.losses import AdversarialLoss, VGG19Features, gram_matrix
from inpaintzoo.losses.pyramid import PyramidStructureLoss
from inpaintzoo.methods.base import InpaintingModule, not_none
from inpaintzoo.nets.structure_knowledge import (
    MIN_SIZE,
    SIZE_MULTIPLE,
    build_structure_knowledge_nets,
)
from inpaintzoo.structure import (
    canny_edges,
    canny_kernel_size,
    dilate_hole,
    rgb_to_gray,
    sobel_gradients,
)

log = logging.getLogger(__name__)

#: VGG19 layers and per-layer weights of the official content and style losses.
VGG_LAYER_WEIGHTS: dict[str, float] = {
    "relu1_1": 0.2,
    "relu2_1": 0.2,
    "relu3_1": 0.2,
    "relu4_1": 0.2,
    "relu5_1": 0.2,
}


def tf_sobel_gradients(image: torch.Tensor) -> torch.Tensor:
    """TensorFlow ``tf.image.sobel_edges`` reshaped to ``(B, 2C, H, W)`` as the official model:
    per channel ``(dy, dx)`` with unnormalised 3x3 Sobel kernels and **reflect** borders.

    :func:`inpaintzoo.structure.sobel_gradients` has the same layout with replicated borders;
    reflect-padding by one pixel first makes every output pixel use TF's border values.
    """
    if image.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(image.shape)}")
    padded = F.pad(image, (1, 1, 1, 1), mode="reflect")
    return sobel_gradients(padded)[..., 1:-1, 1:-1]


def _canny(image: torch.Tensor, sigma: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Canny with the Gaussian support shrunk where a small pyramid level needs it (kornia
    reflect-pads the blur, which needs a pad smaller than the side)."""
    side = min(image.shape[-2:])
    size = min(canny_kernel_size(sigma), 2 * (side - 1) - 1) if sigma > 0 else 3
    return canny_edges(image, sigma=sigma, mask=mask, kernel_size=max(size, 3))


class ContentStyleLoss(nn.Module):
    """The official VGG19 content and style losses (squared errors, see the module docstring).

    ``forward(preds, target)`` returns ``{"content": sum_p content(p), "style": sum_p style(p)}``
    (float32 scalars) for a list of predictions against one target, VGG run once on the target
    (under no_grad). Only the terms with a non-zero weight are computed.
    """

    def __init__(
        self,
        perceptual_weight: float,
        style_weight: float,
        backbone: str = "imagenet",
        layer_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.layer_weights = dict(VGG_LAYER_WEIGHTS if layer_weights is None else layer_weights)
        self.use_content = float(perceptual_weight) != 0
        self.use_style = float(style_weight) != 0
        # Fed the [-1, 1] image without mean subtraction, as the official code.
        self.extractor = VGG19Features(list(self.layer_weights), backbone, normalize_input=False)

    def _content(self, fp: dict, ft: dict) -> torch.Tensor:
        total = torch.zeros((), device=next(iter(fp.values())).device)
        for name, w in self.layer_weights.items():
            total = total + w * F.mse_loss(fp[name].float(), ft[name].float())
        return total

    def _style(self, fp: dict, gt: dict) -> torch.Tensor:
        total = torch.zeros((), device=next(iter(fp.values())).device)
        for name, w in self.layer_weights.items():
            feat = fp[name]
            gram = gram_matrix(feat)
            size = feat.numel()  # N * H * W * C of this layer, as the official normaliser
            total = total + w * (gram - gt[name]).pow(2).sum() / size
        return total

    def forward(self, preds: Sequence[torch.Tensor], target: torch.Tensor) -> dict:
        with torch.no_grad():
            ft = self.extractor(target)
            gt = {k: gram_matrix(v) for k, v in ft.items()} if self.use_style else {}
        zero = torch.zeros((), device=target.device)
        content, style = zero, zero.clone()
        for pred in preds:
            fp = self.extractor(pred)
            if self.use_content:
                content = content + self._content(fp, ft)
            if self.use_style:
                style = style + self._style(fp, gt)
        return {"content": content, "style": style}


class StructureKnowledge(InpaintingModule):
    """Structure-knowledge multi-task generator + SN PatchGAN (see the module docstring).

    Args (beyond :class:`InpaintingModule`'s):
        canny_sigma: Canny sigma of the edge input and of the loss's edge maps (1.5 at 256 px).
        gan_loss: ``hinge`` (official) | ``nsgan`` | ``lsgan``.
        l1_hole_weight, l1_valid_weight: L1 on the hole / known pixels (``L1_FORE_ALPHA``,
            ``L1_BACK_ALPHA``: 1, 1).
        perceptual_weight: VGG content weight, applied to the composite and to the raw output
            (``CONTENT_FORE_ALPHA`` = ``CONTENT_BACK_ALPHA`` = 0.1).
        style_weight: VGG style weight, likewise (``STYLE_FORE_ALPHA`` = ``STYLE_BACK_ALPHA`` =
            250).
        adversarial_weight: generator hinge weight (``PATCH_GAN_ALPHA`` 0.4).
        structure_weight, edge_alpha, grad_alpha: pyramid structure loss (``ALPHA`` 1,
            ``EDGE_ALPHA`` 20, ``GRAD_ALPHA`` 0.1).
        multiscale_l1_weight: image L1 (hole + valid) at 1/4 and 1/2 scale (official 0).
        perceptual_backbone: ``imagenet`` (needs torchvision's VGG19 file in the torch cache)
            or ``random`` (timing only; logged). Unused when both VGG weights are 0.
        schedule: optional learning-rate phases ``[{"batches": n, "lr": x}, ...]`` (G and D);
            after the last entry its rate continues.
        base_channels, num_residual_blocks, attention_reduction, disc_channels: width
            overrides of the variant.
    """

    method_name: ClassVar[str] = "structure_knowledge"
    size_multiple: ClassVar[int] = SIZE_MULTIPLE
    min_size: ClassVar[int] = MIN_SIZE
    value_range: ClassVar[str] = "[0,1]"
    inference_nets: ClassVar[tuple[str, ...]] = ("generator",)
    vgg_attribute = "vgg_loss"
    vgg_terms = "content/perceptual, style"

    def __init__(
        self,
        variant: str = "full",
        canny_sigma: float = 1.5,
        gan_loss: str = "hinge",
        l1_hole_weight: float = 1.0,
        l1_valid_weight: float = 1.0,
        perceptual_weight: float = 0.1,
        style_weight: float = 250.0,
        adversarial_weight: float = 0.4,
        structure_weight: float = 1.0,
        edge_alpha: float = 20.0,
        grad_alpha: float = 0.1,
        multiscale_l1_weight: float = 0.0,
        perceptual_backbone: str = "imagenet",
        schedule: list[dict] | None = None,
        base_channels: int | None = None,
        num_residual_blocks: int | None = None,
        attention_reduction: int | None = None,
        disc_channels: int | None = None,
        lr: float = 1e-5,
        betas: tuple[float, float] = (0.0, 0.9),
        d2g_lr: float = 1.0,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(variant=variant, lr=lr, betas=betas, d2g_lr=d2g_lr, **base_kwargs)
        self.save_method_hparams(
            variant=variant,
            canny_sigma=canny_sigma,
            gan_loss=gan_loss,
            l1_hole_weight=l1_hole_weight,
            l1_valid_weight=l1_valid_weight,
            perceptual_weight=perceptual_weight,
            style_weight=style_weight,
            adversarial_weight=adversarial_weight,
            structure_weight=structure_weight,
            edge_alpha=edge_alpha,
            grad_alpha=grad_alpha,
            multiscale_l1_weight=multiscale_l1_weight,
            perceptual_backbone=perceptual_backbone,
            schedule=schedule,
            base_channels=base_channels,
            num_residual_blocks=num_residual_blocks,
            attention_reduction=attention_reduction,
            disc_channels=disc_channels,
            lr=lr,
            betas=betas,
            d2g_lr=d2g_lr,
            **base_kwargs,
        )
        self.canny_sigma = float(canny_sigma)
        self.weights = {
            "l1_hole": float(l1_hole_weight),
            "l1_valid": float(l1_valid_weight),
            "perceptual": float(perceptual_weight),
            "style": float(style_weight),
            "adversarial": float(adversarial_weight),
            "multiscale_l1": float(multiscale_l1_weight),
        }
        self.schedule = [dict(s) for s in (schedule or [])]
        for entry in self.schedule:
            unknown = set(entry) - {"batches", "lr"}
            if unknown:
                raise ValueError(f"bad schedule entry {entry!r}: unknown keys {sorted(unknown)}")
            if int(entry.get("batches", -1)) < 0 or float(entry.get("lr", 0)) <= 0:
                raise ValueError(f"bad schedule entry {entry!r}: need batches >= 0 and lr > 0")
        if perceptual_backbone not in ("imagenet", "random"):
            raise ValueError(
                f"perceptual_backbone must be 'imagenet' or 'random', got {perceptual_backbone!r}"
            )
        overrides = not_none(
            base_channels=base_channels,
            num_residual_blocks=num_residual_blocks,
            attention_reduction=attention_reduction,
            disc_channels=disc_channels,
        )
        nets = build_structure_knowledge_nets(variant, **overrides)
        self.generator = nets["generator"]
        self.discriminator = nets["discriminator"]
        self.adversarial_loss = AdversarialLoss(gan_loss)
        self.structure_loss = PyramidStructureLoss(
            alpha=structure_weight, edge_alpha=edge_alpha, grad_alpha=grad_alpha
        )
        self.perceptual_backbone = perceptual_backbone
        # The VGG19 content/style loss is built lazily at fit start (InpaintingModule.lazy_vgg).

    # ------------------------------------------------------------------ losses
    @property
    def vgg_loss(self) -> ContentStyleLoss | None:
        return self.lazy_vgg(
            lambda: ContentStyleLoss(
                self.weights["perceptual"], self.weights["style"], self.perceptual_backbone
            )
        )

    def run_notes(self) -> list[str]:
        """What makes this run differ from the paper recipe (recorded in results files)."""
        notes = self.vgg_notes()
        if self.variant != "full":
            notes.append(f"{self.variant} variant (reduced widths), not the paper's network")
        if self.schedule:
            notes.append(self.schedule_note())
        return notes

    def optimizer_specs(self):
        return {
            "generator": (self.generator.parameters(), self.lr),
            "discriminator": (self.discriminator.parameters(), self.lr * self.d2g_lr),
        }

    # ------------------------------------------------------------------ structure inputs
    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Canny edges of the full image (and, in training, of its nearest-resized 1/2 and 1/4
        versions for the pyramid loss), on the module's device."""
        batch = dict(batch)
        image = batch["image"]
        if "edge" not in batch:
            batch["edge"] = _canny(rgb_to_gray(image), self.canny_sigma)
        if self.training:
            h, w = image.shape[-2:]
            for key, factor in (("edge_half", 2), ("edge_quarter", 4)):
                if key not in batch:
                    small = F.interpolate(image, size=(h // factor, w // factor), mode="nearest")
                    batch[key] = _canny(rgb_to_gray(small), self.canny_sigma)
        return batch

    # ------------------------------------------------------------------ training
    @staticmethod
    def _hole_valid_l1(
        pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Official ``l1_loss``: sum over the 3 channels of the masked error / mask pixel count."""
        error = (pred - target).abs()
        hole = (mask * error).sum() / mask.sum().clamp_min(1.0)
        valid = ((1 - mask) * error).sum() / (1 - mask).sum().clamp_min(1.0)
        return hole, valid

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        x = image * 2.0 - 1.0
        grad = tf_sobel_gradients(x)
        out = self.generator(image, batch["edge"], mask, grad)
        signed = [t * 2.0 - 1.0 for t in out["images"]]

        # pyramid targets: nearest-resized image and mask, their Sobel maps, Canny maps
        targets, masks, grad_targets = [], [], []
        for pred in signed[:-1]:
            size = pred.shape[-2:]
            targets.append(F.interpolate(x, size=size, mode="nearest"))
            masks.append(F.interpolate(mask, size=size, mode="nearest"))
            grad_targets.append(tf_sobel_gradients(targets[-1]))
        targets.append(x)
        masks.append(mask)
        grad_targets.append(grad)
        edges = [batch["edge_quarter"], batch["edge_half"], batch["edge"]]

        structure = self.structure_loss(out["gradients"], grad_targets, edges)
        out_full = signed[-1]
        comp = out_full * mask + x * (1 - mask)
        l1_hole, l1_valid = self._hole_valid_l1(out_full, x, mask)
        terms: dict[str, torch.Tensor] = {
            "l1_hole": l1_hole,
            "l1_valid": l1_valid,
            "structure": structure["total"],
        }
        if self.weights["multiscale_l1"] != 0:
            ms = [sum(self._hole_valid_l1(p, t, m)) for p, t, m in zip(signed, targets, masks)]
            terms["multiscale_l1"] = ms[0] + ms[1]
        vgg = self.vgg_loss
        if vgg is not None:
            vgg_terms = vgg([comp, out_full], x)
            terms["perceptual"] = vgg_terms["content"]
            terms["style"] = vgg_terms["style"]
        comp01 = out["images"][-1] * mask + image * (1 - mask)
        self.discriminator.requires_grad_(False)
        terms["adversarial"] = self.adversarial_loss(
            self.discriminator(comp01), True, for_discriminator=False
        )
        self.discriminator.requires_grad_(True)
        # the structure term carries its weight (alpha) inside PyramidStructureLoss
        weights = {**self.weights, "structure": 1.0}
        g_loss = sum(weights[k] * v for k, v in terms.items())
        self.optimize({"g": g_loss}, "generator", terms)

        # D on the same forward pass (composite detached): simultaneous updates as the official
        real_logits = self.discriminator(image)
        fake_logits = self.discriminator(comp01.detach())
        d_loss = self.adversarial_loss(real_logits, True) + self.adversarial_loss(
            fake_logits, False
        )
        self.optimize({"d": d_loss}, "discriminator")

        logs = {"g": g_loss, "d": d_loss, **terms}
        for k, v in structure.items():
            if k != "total":
                logs[f"structure_{k}"] = v
        return logs

    # ------------------------------------------------------------------ inference
    def inference_inputs(
        self, image: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge and gradient inputs from the known pixels only (``image`` has the hole zeroed).

        Edge: Canny in test mode (smoothing over known pixels, no edges in the hole or on its
        border). Gradient: Sobel of the hole-zeroed ``[-1, 1]`` image, zero wherever the 3x3
        Sobel support touches the hole.
        """
        edge = _canny(rgb_to_gray(image), self.canny_sigma, mask=mask)
        x = (image * 2.0 - 1.0) * (1 - mask)
        grad = tf_sobel_gradients(x) * (1 - dilate_hole(mask))
        return edge, grad

    def inpaint_raw(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        """``image`` arrives with the hole zeroed (see ``inpaint``). Returns ``output`` (full
        scale, [0, 1]), the ``edge`` input and the predicted full-scale ``gradient`` (6 ch)."""
        edge, grad = self.inference_inputs(image, mask)
        out = self.generator(image, edge, mask, grad)
        return {"output": out["images"][-1], "edge": edge, "gradient": out["gradients"][-1]}

    def eval_logs(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        """Mean absolute error of the predicted Sobel map inside the hole (6 channels)."""
        target = tf_sobel_gradients(batch["image"] * 2.0 - 1.0)
        mask = batch["mask"]
        err = ((out["gradient"] - target).abs() * mask).sum()
        return {"gradient_l1_hole": err / (mask.sum() * target.shape[1]).clamp_min(1.0)}

    def extra_sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        grad = out["gradient"]
        b, _, h, w = grad.shape
        magnitude = grad.reshape(b, 3, 2, h, w).pow(2).sum(2).sqrt().mean(1, keepdim=True)
        scale = magnitude.flatten(1).amax(1).clamp_min(1e-6).view(b, 1, 1, 1)
        return {
            "input edges": 1.0 - out["edge"],  # black lines on white
            "predicted gradient": (magnitude / scale).clamp(0, 1),
        }
