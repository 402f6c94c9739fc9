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
  borders (TF ``sobel_edges``), Canny sigma 1.5 at 256 px (``canny_sigma``, the official
  ``SIGMA``; experiments at 64 px set ``structure_scale``).
* Generator loss (all on ``[-1, 1]`` images, as the official code):
  ``l1_hole + l1_valid + perceptual * (content(C) + content(out)) + style * (style(C) +
  style(out)) + 0.4 * hinge_G(D(C)) + pyramid structure loss`` with ``C = out*m + x*(1-m)``;
  ``l1_hole = sum(m |out - x|) / sum(m)`` (sum over the 3 channels, divided by the number of
  hole pixels), ``l1_valid`` likewise on ``1 - m``. Content: ``0.2 * MSE`` of VGG19
  relu1_1..relu5_1; style: ``0.2 * sum((Gram_y - Gram)^2) / (N H W C)`` on the same layers,
  ``Gram = F^T F / (H W C)``; weights 0.1 and 250 (``perceptual_weight``/``style_weight``, each
  applied to both the composite and the raw output), at the official magnitude (below). Image
  L1 at 1/4 and 1/2 scale exists in the code with weight 0 (``multiscale_l1_weight``).
* VGG19: the official code feeds the ``[-1, 1]`` image to MatConvNet's VGG19, whose weights
  expect 0-255 mean-subtracted pixels: its input is :data:`OFFICIAL_VGG_INPUT_SCALE` = 2/255
  times what the weights expect. Here torchvision's VGG19 gets what *its* weights expect
  (ImageNet-normalised ``[0, 1]`` images) and the terms are scaled to the official magnitude:
  VGG is treated as positively homogeneous (its ReLU/max-pool layers are; its biases are
  small next to the activations), so features scale with the input, the content MSE with its
  square and the squared Gram difference with its fourth power: content x (2/255)^2 = 6.2e-5,
  style x (2/255)^4 = 3.8e-9 (:data:`CONTENT_SCALE`, :data:`STYLE_SCALE`).
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

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.conventions import composite, to_signed
from inpaintzoo.losses import VGG19Features, gram_matrix
from inpaintzoo.losses.pyramid import PyramidStructureLoss
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, register_method
from inpaintzoo.nets.structure_knowledge import (
    MIN_SIZE,
    OFFICIAL_PARAM_COUNTS,
    SIZE_MULTIPLE,
    STRUCTURE_KNOWLEDGE_VARIANTS,
    build_structure_knowledge_nets,
)
from inpaintzoo.structure import (
    canny_edges,
    canny_kernel_size,
    dilate_hole,
    rgb_to_gray,
    sobel_gradients,
)

#: The official VGG19 input (the ``[-1, 1]`` image) over the input its MatConvNet weights expect
#: (0-255 pixels minus the mean): 1 / 127.5.
OFFICIAL_VGG_INPUT_SCALE = 2.0 / 255.0
#: Factor that brings content (MSE of features) from a properly fed VGG to the official magnitude.
CONTENT_SCALE = OFFICIAL_VGG_INPUT_SCALE**2
#: Factor for the style term (squared difference of Gram matrices: fourth power of features).
STYLE_SCALE = OFFICIAL_VGG_INPUT_SCALE**4

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
    """The official VGG19 content and style losses at the official magnitude (module docstring).

    ``forward(preds, target)`` takes ``[0, 1]`` images and returns ``{"content": sum_p
    content(p), "style": sum_p style(p)}`` (float32 scalars) for a list of predictions against
    one target, VGG run once on the target (under no_grad). The VGG is fed ImageNet-normalised
    images (what torchvision's weights expect) and the terms are multiplied by
    ``content_scale`` / ``style_scale`` (default :data:`CONTENT_SCALE`, :data:`STYLE_SCALE`: the
    official formulation's magnitude). Only the terms with a non-zero weight are computed.
    """

    def __init__(
        self,
        perceptual_weight: float,
        style_weight: float,
        backbone: str = "imagenet",
        layer_weights: dict[str, float] | None = None,
        content_scale: float = CONTENT_SCALE,
        style_scale: float = STYLE_SCALE,
        extractor: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.layer_weights = dict(VGG_LAYER_WEIGHTS if layer_weights is None else layer_weights)
        self.use_content = float(perceptual_weight) != 0
        self.use_style = float(style_weight) != 0
        self.content_scale = float(content_scale)
        self.style_scale = float(style_scale)
        self.extractor = extractor or VGG19Features(
            list(self.layer_weights), backbone, normalize_input=True
        )

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
        return {"content": content * self.content_scale, "style": style * self.style_scale}


@register_method
class StructureKnowledge(InpaintingModule):
    """Structure-knowledge multi-task generator + SN PatchGAN (see the module docstring).

    Loss weights (contract options ``<term>_weight``): ``l1_hole``/``l1_valid`` (official
    ``L1_FORE_ALPHA``/``L1_BACK_ALPHA`` 1, 1), ``perceptual`` (VGG content, 0.1 on the
    composite and on the raw output), ``style`` (250, likewise), ``adversarial`` (hinge,
    ``PATCH_GAN_ALPHA`` 0.4), ``structure`` (pyramid structure loss ``ALPHA`` 1), ``multiscale_l1``
    (image L1 at 1/4 and 1/2 scale, official 0).

    Args (beyond :class:`InpaintingModule`'s and the contract's options):
        edge_alpha, grad_alpha: pyramid structure loss (``EDGE_ALPHA`` 20, ``GRAD_ALPHA`` 0.1).
    """

    contract = MethodContract(
        name="structure_knowledge",
        paper="Yang, Qi, Shi, Learning to Incorporate Structure Knowledge for Image Inpainting, "
        "AAAI 2020",
        official_repo="YoungGod/sturcture-inpainting (sic; TensorFlow 1.15)",
        build_nets=build_structure_knowledge_nets,
        variants=STRUCTURE_KNOWLEDGE_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=("generator",),
        size_multiple=SIZE_MULTIPLE,
        min_size=MIN_SIZE,
        losses={
            "l1_hole": 1.0,
            "l1_valid": 1.0,
            "perceptual": 0.1,
            "style": 250.0,
            "adversarial": 0.4,
            "structure": 1.0,
            "multiscale_l1": 0.0,
        },
        lr=1e-5,  # G_LR of the released config (the paper may train at 1e-4 first, unverified)
        betas=(0.0, 0.9),
        d2g_lr=1.0,
        gan_loss="hinge",
        structure_inputs=("edge",),
        structure_params={"canny_sigma": 1.5},
        vgg_terms=("perceptual", "style"),
        value_range="[-1,1]",
        notes=("VGG19 terms at the official magnitude with torchvision weights (see docs)",),
        # the released lr 1e-5 learns slowly: measured +0.4 dB after 30 batches, +0.7 after 60,
        # +1.2 after 100 (at 1e-4: +4.6 after 30)
        learning=LearningCheck(batches=80, min_gain_db=0.6),
    )
    vgg_attribute = "vgg_loss"

    def __init__(
        self,
        variant: str = "full",
        *,
        edge_alpha: float = 20.0,
        grad_alpha: float = 0.1,
        **options: Any,
    ) -> None:
        super().__init__(variant, **options)
        self.structure_loss = PyramidStructureLoss(
            alpha=self.weights["structure"], edge_alpha=edge_alpha, grad_alpha=grad_alpha
        )

    # ------------------------------------------------------------------ losses
    @property
    def vgg_loss(self) -> ContentStyleLoss | None:
        return self.lazy_vgg(
            lambda: ContentStyleLoss(
                self.weights["perceptual"], self.weights["style"], self.backbone_weights()
            )
        )

    # ------------------------------------------------------------------ structure inputs
    def edge_map(self, gray: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return _canny(gray, self.canny_sigma, mask=mask)

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Canny edges of the full image (and, in training, of its nearest-resized 1/2 and 1/4
        versions for the pyramid loss), on the module's device."""
        batch = super().prepare_batch(batch)
        if self.training:
            image = batch["image"]
            h, w = image.shape[-2:]
            for key, factor in (("edge_half", 2), ("edge_quarter", 4)):
                if key not in batch:
                    small = F.interpolate(image, size=(h // factor, w // factor), mode="nearest")
                    batch[key] = self.edge_map(rgb_to_gray(small))
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
        x = to_signed(image)
        grad = tf_sobel_gradients(x)
        out = self.generator(image, batch["edge"], mask, grad)
        signed = [to_signed(t) for t in out["images"]]

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
        l1_hole, l1_valid = self._hole_valid_l1(out_full, x, mask)
        terms: dict[str, torch.Tensor] = {
            "l1_hole": l1_hole,
            "l1_valid": l1_valid,
            "structure": structure["total"],
        }
        if self.weights["multiscale_l1"] != 0:
            ms = [sum(self._hole_valid_l1(p, t, m)) for p, t, m in zip(signed, targets, masks)]
            terms["multiscale_l1"] = ms[0] + ms[1]
        comp01 = composite(out["images"][-1], image, mask)
        vgg = self.vgg_loss
        if vgg is not None:
            vgg_terms = vgg([comp01, out["images"][-1]], image)
            terms["perceptual"] = vgg_terms["content"]
            terms["style"] = vgg_terms["style"]
        terms["adversarial"], _ = self.generator_adversarial("discriminator", comp01)
        # the structure term carries its weight (alpha) inside PyramidStructureLoss
        weights = {**self.weights, "structure": 1.0}
        g_loss = sum(weights[k] * v for k, v in terms.items())
        self.optimize({"g": g_loss}, "generator", terms)
        # D on the same forward pass (composite detached): simultaneous updates as the official
        d_loss, _ = self.discriminator_step("discriminator", image, comp01)

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
        edge = self.edge_map(rgb_to_gray(image), mask=mask)
        x = to_signed(image) * (1 - mask)
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
        target = tf_sobel_gradients(to_signed(batch["image"]))
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
