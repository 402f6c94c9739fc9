"""GLCIC (Iizuka, Simo-Serra, Ishikawa, SIGGRAPH 2017) as a LightningModule.

"Globally and Locally Consistent Image Completion": a dilated fully convolutional completion
network trained against a global (whole image) and a local (patch around the hole) context
discriminator. Facts from ``../shared/specs/glcic.md`` (the paper; the official
satoshiiizuka/siggraph2017_inpainting ``inpaint.lua`` for inference and post-processing; the
unofficial otenim/GLCIC-PyTorch ``train.py`` for training details the paper leaves open):

* Reconstruction: ``L = mean(|M (C(x, M) - x)|^2)`` over every element (only the hole counts;
  Torch7's ``MSECriterion`` and otenim average, which is what makes ``alpha`` balance the terms).
* GAN: BCE on the context discriminator's single output (``nsgan``: the generator maximises
  ``log D(fake)``, the usual non-saturating form of the paper's min-max). The discriminator
  judges *completed* images (the network's output in the hole, the input elsewhere, as the paper
  describes the completion network's output and the official inference composites): globally
  the whole image, locally a patch centred on the hole's bounding box; a real image's patch is
  at a random position of each sample (the paper's random mask ``M_d``).
* Three phases as one schedule of stages: 1 completion network alone with the MSE loss
  (``T_C = 90,000``), 2 discriminator alone, the completion network fixed (``T_D = 10,000``),
  3 joint (until ``T_train = 500,000``): completion ``MSE + alpha GAN``, discriminator
  ``alpha GAN`` (its part of ``min_C max_D L + alpha GAN``), ``alpha = 0.0004``. Per joint batch
  the discriminator steps first, then the completion network through the updated one.
* ADADELTA with its default settings (``rho`` 0.9, ``eps`` 1e-6, coefficient ``lr`` 1.0) for
  both networks: the contract's Adam settings (``betas``) are unused here.
* Input: the image minus the mean pixel with the hole at 0 (the hole filled with the mean), plus
  the mask (1 = hole, our polarity): done inside :class:`~inpaintzoo.nets.glcic.CompletionNetwork`.
* Optional post-processing at inference (``postprocess: telea_poisson``; the paper used it for its
  Places2 results, the official ``--postproc``): OpenCV fast marching (Telea, radius 1) fills the
  hole of the completed image, then Poisson blending (``cv2.seamlessClone``, ``NORMAL_CLONE``)
  pastes the completed image's hole into it, centred on the hole's bounding box. Default
  ``none``. It uses only the known pixels and the network output.

Sizes: the completion network takes any ``H, W`` multiple of 4. The discriminators have fully
connected heads sized for 256 px images and 128 px patches (full variant): at another training
size the image is resized to the global branch's size and the patch (``local_size / image_size``
of the image) to the local branch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from inpaintzoo.blocks.context_discriminator import crop_around_holes, random_crops
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, Phase, Stage, register_method
from inpaintzoo.nets.glcic import (
    DEFAULT_MEAN_PIXEL,
    GLCIC_VARIANTS,
    OFFICIAL_PARAM_COUNTS,
    SIZE_MULTIPLE,
    build_glcic_nets,
)

__all__ = ["GLCIC", "POSTPROCESS_CHOICES", "telea_poisson_blend"]

POSTPROCESS_CHOICES = ("none", "telea_poisson")
_G, _D = ("generator",), ("discriminator",)


def _hole_box(hole: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, width, height)`` of the non-zero pixels of a 2-D array (``None``: none)."""
    ys, xs = np.nonzero(hole)
    if len(xs) == 0:
        return None
    x0, y0 = int(xs.min()), int(ys.min())
    return x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1


def telea_poisson_blend(completed: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """GLCIC's post-processing (official ``inpaint.lua`` ``--postproc``), per sample.

    1. ``dst``: the hole of the completed image filled by OpenCV's fast marching method
       (``cv2.inpaint``, ``INPAINT_TELEA``, radius 1);
    2. ``cv2.seamlessClone(src=completed, dst, mask, centre, NORMAL_CLONE)``: Poisson blending of
       the completed image's hole into ``dst``.

    OpenCV places the source's bounding box of the mask at ``centre - size // 2`` after zeroing
    the mask's one-pixel image border; ``centre`` is computed from that same box, so the clone
    lands exactly where it was cut (the official ``floor(min + (max - min) / 2)`` lands one pixel
    up/left when the box's side is even).

    Args:
        completed: ``(B, 3, H, W)`` in ``[0, 1]`` (network output in the hole, known pixels
            elsewhere); converted to 8 bits as OpenCV needs.
        mask: ``(B, 1, H, W)``, 1 = hole.

    Returns:
        ``(B, 3, H, W)`` float in ``[0, 1]`` on ``completed``'s device (8-bit values; a sample
        without a hole is returned as given).
    """
    import cv2

    images = (completed.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    images = images.permute(0, 2, 3, 1).cpu().numpy()
    holes = (mask.detach()[:, 0] > 0.5).cpu().numpy().astype(np.uint8) * 255
    out = completed.detach().float().clone()
    for i, (image, hole) in enumerate(zip(images, holes)):
        if not hole.any():
            continue
        image = np.ascontiguousarray(image)
        dst = cv2.inpaint(image, hole, 1, cv2.INPAINT_TELEA)
        inner = hole.copy()
        inner[0, :] = inner[-1, :] = inner[:, 0] = inner[:, -1] = 0  # as seamlessClone does
        box = _hole_box(inner)
        blended = dst
        if box is not None:
            x0, y0, w, h = box
            centre = (x0 + w // 2, y0 + h // 2)
            blended = cv2.seamlessClone(image, dst, hole, centre, cv2.NORMAL_CLONE)
        out[i] = torch.from_numpy(blended).to(out.device).permute(2, 0, 1).float() / 255.0
    return out


@register_method
class GLCIC(InpaintingModule):
    """GLCIC: dilated completion network + global/local context discriminator, three phases.

    Args (beyond :class:`InpaintingModule`'s and the contract's options):
        postprocess: ``none`` (default) or ``telea_poisson`` (the paper's Places2 results):
            applied in :meth:`inpaint_raw`; ``inpaint(..., postprocess=...)`` overrides it per
            call.
        mean_pixel: RGB hole fill of the completion network's input (the training set's mean
            pixel; default ImageNet's).
        adadelta_rho, adadelta_eps: ADADELTA's settings (defaults of the paper's optimiser).
    """

    contract = MethodContract(
        name="glcic",
        paper="Iizuka, Simo-Serra, Ishikawa, Globally and Locally Consistent Image Completion, "
        "ACM TOG (SIGGRAPH) 2017",
        official_repo="satoshiiizuka/siggraph2017_inpainting",
        build_nets=build_glcic_nets,
        variants=GLCIC_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=_G,
        size_multiple=SIZE_MULTIPLE,
        min_size=SIZE_MULTIPLE,
        losses={"mse": 1.0, "adversarial": 0.0004},
        lr=1.0,  # ADADELTA's coefficient (its default)
        betas=(0.9, 0.999),  # unused: ADADELTA
        gan_loss="nsgan",
        stages={
            1: Stage("completion network, MSE", trains=_G),
            2: Stage(  # the completion network fixed, in eval mode (no BatchNorm drift)
                "context discriminator, completion network fixed",
                trains=_D,
                needs=_G,
                eval_nets=_G,
            ),
            3: Stage("joint, MSE + alpha GAN", trains=_G + _D, needs=_G + _D),
        },
        # T_C = 90,000, T_D = 10,000, T_train = 500,000 iterations (paper; spec §4)
        paper_schedule=(
            Phase(1, 0.18, batches=90_000),
            Phase(2, 0.02, batches=10_000),
            Phase(3, 0.80, batches=400_000),
        ),
        # stage 1 at the recipe's ADADELTA (lr 1.0, its slow start from eps 1e-6): measured
        # +0.7 dB after 60 batches, +2.6 after 70, +4.0 after 80 (one run each)
        learning=LearningCheck(batches=80, min_gain_db=2.0),
    )

    def __init__(
        self,
        variant: str = "full",
        *,
        postprocess: str = "none",
        mean_pixel: Sequence[float] = DEFAULT_MEAN_PIXEL,
        adadelta_rho: float = 0.9,
        adadelta_eps: float = 1e-6,
        **options: Any,
    ) -> None:
        super().__init__(variant, **options)
        self.postprocess = self._check_postprocess(postprocess)
        mean = [float(v) for v in mean_pixel]
        if len(mean) != 3 or not all(0.0 <= v <= 1.0 for v in mean):
            raise ValueError(f"mean_pixel needs 3 values in [0, 1] (RGB), got {list(mean_pixel)}")
        with torch.no_grad():
            buffer = self.generator.mean_pixel
            buffer.copy_(torch.tensor(mean, device=buffer.device).view_as(buffer))
        if not 0.0 <= adadelta_rho < 1.0 or adadelta_eps <= 0:
            raise ValueError(
                f"ADADELTA needs 0 <= adadelta_rho < 1 and adadelta_eps > 0, got "
                f"{adadelta_rho}, {adadelta_eps}"
            )
        self.adadelta_rho = float(adadelta_rho)
        self.adadelta_eps = float(adadelta_eps)

    @staticmethod
    def _check_postprocess(value: str) -> str:
        if value not in POSTPROCESS_CHOICES:
            raise ValueError(
                f"unknown GLCIC postprocess {value!r}; choose one of {POSTPROCESS_CHOICES}"
            )
        return value

    # ------------------------------------------------------------------ optimisation
    def make_optimizer(self, name: str, params, lr: float) -> torch.optim.Optimizer:
        """ADADELTA (the paper's optimiser) instead of the base class's Adam."""
        return torch.optim.Adadelta(
            params,
            lr=lr,
            rho=self.adadelta_rho,
            eps=self.adadelta_eps,
            weight_decay=self.weight_decay,
        )

    # ------------------------------------------------------------------ discriminator inputs
    def discriminator_inputs(
        self, image: torch.Tensor, mask: torch.Tensor, real: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(global image, local patch)`` at the discriminator's input sizes.

        The patch covers ``local_size / image_size`` of the image (128 of 256 px), centred on
        the hole's bounding box (``real=False``) or at a random position (``real=True``); either
        is resized to the branch's size when the training size differs from the recipe's.
        """
        disc = self.discriminator
        (gh, gw), (lh, lw) = disc.global_size, disc.local_size
        h, w = image.shape[-2:]
        size = (
            min(h, max(1, round(lh * h / gh))),
            min(w, max(1, round(lw * w / gw))),
        )
        patch = random_crops(image, size) if real else crop_around_holes(image, mask, size)
        return _resize(image, (gh, gw)), _resize(patch, (lh, lw))

    # ------------------------------------------------------------------ training
    def reconstruction_loss(self, output, image, mask) -> torch.Tensor:
        """``mean((M (output - image))^2)`` over every element (hole pixels only count)."""
        return F.mse_loss((output * mask).float(), (image * mask).float())

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        stage = self.current_stage()
        logs: dict[str, torch.Tensor] = {"stage": torch.tensor(float(stage))}
        if stage == 2:
            with torch.no_grad():
                output = self.generator(image, mask)
        else:
            output = self.generator(image, mask)
        completed = output * mask + image * (1.0 - mask)
        if stage in (2, 3):
            # phase 2 trains D on the GAN objective alone; in the joint phase D's part of
            # L + alpha GAN is alpha GAN
            scale = 1.0 if stage == 2 else self.weights["adversarial"]
            d_loss, _ = self.discriminator_step(
                "discriminator",
                self.discriminator_inputs(image, mask, real=True),
                self.discriminator_inputs(completed, mask),
                scale=scale,
            )
            logs["d"] = d_loss.detach()
        if stage in (1, 3):
            terms = {"mse": self.reconstruction_loss(output, image, mask)}
            if stage == 3:
                terms["adversarial"], _ = self.generator_adversarial(
                    "discriminator", self.discriminator_inputs(completed, mask)
                )
            g_loss = sum(self.weights[k] * v for k, v in terms.items())
            self.optimize({"g": g_loss}, "generator", terms)
            logs["g"] = g_loss.detach()
            logs.update({f"g_{k}": v.detach() for k, v in terms.items()})
        return logs

    # ------------------------------------------------------------------ inference
    def inpaint_raw(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        postprocess: str | None = None,
        **extras: Any,
    ) -> dict:
        """``image`` arrives with the hole zeroed; ``postprocess`` overrides the option."""
        mode = self.postprocess if postprocess is None else self._check_postprocess(postprocess)
        output = self.generator(image, mask)
        if mode == "none":
            return {"output": output}
        completed = output * mask + image * (1.0 - mask)
        return {"output": telea_poisson_blend(completed, mask), "network_output": output}

    def extra_run_notes(self) -> list[str]:
        if self.postprocess == "none":
            return [
                "no post-processing (the paper's Places2 results used Telea + Poisson blending: "
                "postprocess=telea_poisson)"
            ]
        return ["post-processing: OpenCV Telea (radius 1) + Poisson blending (seamlessClone)"]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = x.shape[-2] > size[0] or x.shape[-1] > size[1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)
