"""StructureFlow (Ren et al., ICCV 2019) as a LightningModule.

Two generators: a structure reconstructor G_s completes the RTV-smoothed ("structure") image,
then a texture generator G_t renders the picture, sampling its own encoder features along a
predicted appearance flow. Facts from ../shared/specs/structureflow.md (official repo
RenYurui/StructureFlow, ``src/models.py``, ``src/loss.py``, ``config.yaml``):

* Stages: 1 structure (G_s + its D), 2 texture on ground-truth structure images (G_t + its D),
  3 texture on G_s's output with G_s frozen (the official "joint" model). The default run
  trains 1 -> 2 -> 3 (25 / 37.5 / 37.5 % of the run; the official runs each "until stopped").
* G_s loss: 4 x L1(out, smooth) + 1 x LSGAN adversarial (real = GT smooth image).
  G_t loss: 1 x adversarial + 5 x L1(out, gt) + 0.25 x sampling correctness; stage 3 adds
  250 x style(out*m, gt*m) + 0.1 x perceptual(out, gt). The official nets work in ``[-1, 1]``:
  L1 terms are computed on that scale (twice the ``[0, 1]`` L1) and VGG19 is fed ``[-1, 1]``
  images without ImageNet normalisation.
* Multi-scale LSGAN discriminators (no sigmoid: ``lsgan`` on raw outputs); D loss = mean over
  scales of (real + fake) / 2; the D step comes first and G's adversarial term re-runs the
  updated D (official order).
* Adam lr 1e-4, betas (0, 0.999), one rate for generators and discriminators (d2g_lr 1).

Structure images are computed with :func:`inpaintzoo.structure.rtv.rtv_smooth` (tsmooth's
lambda 0.015, sigma 3 at 256 px times ``structure_scale``, sharpness 0.001, 3 iterations) for
the batch key ``smooth``, optionally through an on-disk
:class:`~inpaintzoo.structure.rtv.RTVCache`. The sampling-correctness loss needs VGG19
features: with VGG losses off it is off too, and the run notes say so.
At inference the networks see only the known pixels: G_s's structure input is the RTV image of
the *masked* input (masked again), G_t gets G_s's output.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from inpaintzoo.blocks.flow import gaussian_sample
from inpaintzoo.conventions import to_signed
from inpaintzoo.losses import VGG19Features, VGGLoss
from inpaintzoo.losses.perceptual import DEFAULT_PERCEPTUAL_LAYERS, DEFAULT_STYLE_LAYERS
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, Phase, Stage, register_method
from inpaintzoo.nets.structureflow import (
    MIN_SIZE,
    OFFICIAL_PARAM_COUNTS,
    SIZE_MULTIPLE,
    STRUCTUREFLOW_VARIANTS,
    build_structureflow_nets,
)

_STRUCTURE = ("structure_generator", "structure_discriminator")
_TEXTURE = ("texture_generator", "texture_discriminator")

#: VGG19 layer of the sampling correctness loss (64x64 for 256 px input).
CORRECTNESS_LAYER = "relu3_1"


def sampling_correctness_loss(
    input_features: torch.Tensor,
    target_features: torch.Tensor,
    flow: torch.Tensor,
    mask: torch.Tensor,
    kernel_size: int = 4,
    sigma: float = 2.0,
) -> torch.Tensor:
    """StructureFlow's sampling correctness loss (spec section 8).

    Args:
        input_features: ``V_i`` (B, C, h, w), VGG features of the masked input.
        target_features: ``V_g`` (B, C, h, w), VGG features of the ground truth.
        flow: (B, 2, H', W') in pixels of its own grid; adaptive-average-pooled to ``(h, w)``
            (and rescaled by ``h / H'``, ``w / W'``, a no-op at the official sizes).
        mask: (B, 1, H, W), 1 = hole; nearest-resized to ``(h, w)``.

    Returns:
        Scalar ``sum_j m_j exp(-c(j) / (c_max(j) + 1e-8)) / (sum_j m_j + 1e-8)`` with
        ``c(j) = cos(GaussSample(V_i, flow)(j), V_g(j))`` and ``c_max(j) = max_i cos(V_i(i),
        V_g(j))``. Gradients reach the flow (and the features if they require grad).
    """
    if input_features.shape != target_features.shape or input_features.ndim != 4:
        raise ValueError(
            "input and target features must have the same (B, C, h, w) shape, got "
            f"{tuple(input_features.shape)} and {tuple(target_features.shape)}"
        )
    b, _, h, w = input_features.shape
    fh, fw = flow.shape[-2:]
    flow = F.adaptive_avg_pool2d(flow, (h, w))
    if (fh, fw) != (h, w):
        scale = torch.tensor([w / fw, h / fh], device=flow.device, dtype=flow.dtype)
        flow = flow * scale.view(1, 2, 1, 1)
    m = F.interpolate(mask.float(), size=(h, w), mode="nearest").view(b, -1)
    sampled = gaussian_sample(input_features, flow, kernel_size, sigma)
    vi = F.normalize(input_features.flatten(2), dim=1)  # (B, C, hw)
    vg = F.normalize(target_features.flatten(2), dim=1)
    vs = F.normalize(sampled.flatten(2), dim=1)
    c_max = torch.bmm(vi.transpose(1, 2), vg).amax(dim=1)  # (B, hw_g)
    c = (vs * vg).sum(1)  # (B, hw)
    loss = torch.exp(-c / (c_max + 1e-8))
    return (loss * m).sum() / (m.sum() + 1e-8)


def _l1_pm1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 on the official ``[-1, 1]`` scale for ``[0, 1]`` tensors (= 2 x the [0, 1] L1)."""
    return 2.0 * F.l1_loss(pred.float(), target.float())


@register_method
class StructureFlow(InpaintingModule):
    """StructureFlow: structure reconstructor + appearance-flow texture generator.

    Loss weights (contract options ``<term>_weight``): ``structure_l1`` 4 and
    ``structure_adversarial`` 1 (G_s); ``l1`` 5, ``adversarial`` 1, ``correctness`` 0.25 (G_t);
    ``perceptual`` 0.1 and ``style`` 250 (stage 3). ``rtv_sigma`` (3 at 256 px) is scaled by
    ``structure_scale``.

    Args (beyond :class:`InpaintingModule`'s and the contract's options):
        rtv_lambda, rtv_sharpness, rtv_iterations: RTV smoothing (0.015, 0.001, 3: the official
            MATLAB call).
        rtv_solver: ``official`` (MATLAB's pcg, tol 0.1, modified incomplete Cholesky: equals
            the official structure images bit for bit on 8 of 9 shipped examples) or ``exact``
            (a tight solve, 40-49 dB from them).
        rtv_cache_dir: optional on-disk cache of RTV images (keyed by image sha256).
    """

    contract = MethodContract(
        name="structureflow",
        paper="Ren et al., StructureFlow: Image Inpainting via Structure-aware Appearance Flow, "
        "ICCV 2019",
        official_repo="RenYurui/StructureFlow",
        build_nets=build_structureflow_nets,
        variants=STRUCTUREFLOW_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=("structure_generator", "texture_generator"),
        size_multiple=SIZE_MULTIPLE,
        min_size=MIN_SIZE,
        losses={
            "structure_l1": 4.0,
            "structure_adversarial": 1.0,
            "l1": 5.0,
            "adversarial": 1.0,
            "correctness": 0.25,
            "perceptual": 0.1,
            "style": 250.0,
        },
        lr=1e-4,
        betas=(0.0, 0.999),
        d2g_lr=1.0,
        gan_loss="lsgan",
        stages={
            1: Stage("structure", trains=_STRUCTURE),
            2: Stage("texture (GT structure)", trains=_TEXTURE),
            3: Stage(
                "texture on G_s output (joint)",
                trains=_TEXTURE,
                needs=("structure_generator",),
                eval_nets=("structure_generator",),
            ),
        },
        paper_schedule=(Phase(1, 0.25), Phase(2, 0.375), Phase(3, 0.375)),
        structure_inputs=("smooth",),
        structure_params={"rtv_sigma": 3.0},
        vgg_terms=("perceptual", "style", "correctness"),
        value_range="[-1,1]",
        # stage 2 at the recipe lr 1e-4: measured +3.8 dB after 30 batches, +5.4 after 60
        learning=LearningCheck(stage=2, batches=30, min_gain_db=2.0),
    )
    vgg_attribute = "vgg_loss"

    def __init__(
        self,
        variant: str = "full",
        *,
        rtv_lambda: float = 0.015,
        rtv_sharpness: float = 0.001,
        rtv_iterations: int = 3,
        rtv_solver: str = "official",
        rtv_cache_dir: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(variant, **options)
        self.configure_rtv(
            lam=rtv_lambda,
            sharpness=rtv_sharpness,
            iterations=rtv_iterations,
            solver=rtv_solver,
            cache_dir=rtv_cache_dir,
        )

    # ------------------------------------------------------------------ VGG losses
    @property
    def vgg_loss(self) -> VGGLoss | None:
        """Perceptual/style loss sharing one VGG19 that also gives relu3_1 (``None`` if off)."""

        def build() -> VGGLoss:
            layers = [*DEFAULT_PERCEPTUAL_LAYERS, *DEFAULT_STYLE_LAYERS, CORRECTNESS_LAYER]
            extractor = VGG19Features(layers, weights=self.backbone_weights())
            return VGGLoss(
                perceptual_weight=self.weights["perceptual"],
                style_weight=self.weights["style"],
                extractor=extractor,
            )

        return self.lazy_vgg(build)

    def extra_run_notes(self) -> list[str]:
        if self.weights["correctness"] and not self.vgg_enabled:
            return [
                f"sampling-correctness loss (correctness_weight={self.weights['correctness']:g}) "
                "not applied: it needs VGG19 features, and VGG-based losses are off"
            ]
        return []

    # ------------------------------------------------------------------ losses
    def _adversarial_step(self, disc_name: str, real: torch.Tensor, fake: torch.Tensor):
        """D step on (real, fake.detach()), then G's adversarial term through the updated D."""
        d_loss, _ = self.discriminator_step(disc_name, real, fake, scale=0.5)
        g_adv, _ = self.generator_adversarial(disc_name, fake)
        return d_loss, g_adv

    def _structure_step(self, image, smooth, mask):
        pred = self.structure_generator(image * (1 - mask), smooth, mask)
        d_loss, g_adv = self._adversarial_step("structure_discriminator", smooth, pred)
        l1 = _l1_pm1(pred, smooth)
        g_loss = self.weights["structure_l1"] * l1 + self.weights["structure_adversarial"] * g_adv
        logs = {"structure_d": d_loss, "structure_adv": g_adv, "structure_l1": l1,
                "structure_g": g_loss}  # fmt: skip
        return g_loss, logs

    def _texture_step(self, image, structure, mask, with_style: bool):
        masked = image * (1 - mask)
        out, flow = self.texture_generator(masked, structure, mask)
        d_loss, g_adv = self._adversarial_step("texture_discriminator", image, out)
        terms = {"adversarial": g_adv, "l1": _l1_pm1(out, image)}
        vgg = self.vgg_loss
        if vgg is not None:
            out_pm, gt_pm = to_signed(out), to_signed(image)
            masked_pm = to_signed(masked) * (1 - mask)
            if self.weights["correctness"] != 0:
                with torch.no_grad():
                    v_i = vgg.extractor(masked_pm)[CORRECTNESS_LAYER]
                    v_g = vgg.extractor(gt_pm)[CORRECTNESS_LAYER]
                terms["correctness"] = sampling_correctness_loss(v_i, v_g, flow, mask)
            if with_style:
                vgg_terms = vgg(out_pm, gt_pm, style_pred=out_pm * mask, style_target=gt_pm * mask)
                terms["perceptual"] = vgg_terms["perceptual"]
                terms["style"] = vgg_terms["style"]
        g_loss = sum(self.weights[k] * v for k, v in terms.items())
        logs = {"texture_d": d_loss, "texture_g": g_loss}
        logs.update({f"texture_{k}": v for k, v in terms.items()})
        return g_loss, logs

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask, smooth = batch["image"], batch["mask"], batch["smooth"]
        stage = self.current_stage()
        logs: dict[str, torch.Tensor] = {"stage": torch.tensor(float(stage))}
        if stage == 1:
            g_loss, step_logs = self._structure_step(image, smooth, mask)
            self.optimize({"structure_g": g_loss}, "structure_generator", step_logs)
        elif stage == 2:
            g_loss, step_logs = self._texture_step(image, smooth, mask, with_style=False)
            self.optimize({"texture_g": g_loss}, "texture_generator", step_logs)
        else:  # G_s frozen; G_t (and its D) trained on G_s's structure image
            with torch.no_grad():
                structure = self.structure_generator(image * (1 - mask), smooth, mask)
            g_loss, step_logs = self._texture_step(image, structure, mask, with_style=True)
            self.optimize({"texture_g": g_loss}, "texture_generator", step_logs)
        logs.update(step_logs)
        return logs

    # ------------------------------------------------------------------ inference
    def inpaint_raw(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        smooth: torch.Tensor | None = None,
        structure: torch.Tensor | None = None,
        **extras: Any,
    ) -> dict:
        """``image`` arrives with the hole zeroed (see ``inpaint``).

        ``smooth``: structure image whose known part feeds G_s (default: RTV of the masked
        input); ``structure``: a full structure image for G_t instead of G_s's prediction
        (stage-2 validation with ground-truth structure). Returns ``output``, ``structure``
        (what G_t used) and ``flow`` (B, 2, H/4, W/4).
        """
        if structure is None:
            if smooth is None:
                smooth = self.smooth_map(image)
            structure = self.structure_generator(image, smooth, mask)
        out, flow = self.texture_generator(image, structure, mask)
        return {"output": out, "structure": structure, "flow": flow}

    def inference_extras(self, batch: dict[str, Any]) -> dict[str, Any]:
        # A stage-2 model has only seen ground-truth structure images: validate it that way.
        return {"structure": batch["smooth"]} if self.current_stage() == 2 else {}

    def eval_logs(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        mask = batch["mask"].expand_as(batch["smooth"])
        err = ((out["structure"] - batch["smooth"]).abs() * mask).sum()
        return {"structure_hole_l1": err / mask.sum().clamp_min(1)}

    def extra_sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        return {"structure": out["structure"].clamp(0, 1)}
