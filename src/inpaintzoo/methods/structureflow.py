"""StructureFlow (Ren et al., ICCV 2019) as a LightningModule.

Two generators: a structure reconstructor G_s completes the RTV-smoothed ("structure") image,
then a texture generator G_t renders the picture, sampling its own encoder features along a
predicted appearance flow. Facts from ../shared/specs/structureflow.md (official repo
RenYurui/StructureFlow, ``src/models.py``, ``src/loss.py``, ``config.yaml``):

* Stages: 1 structure (G_s + its D), 2 texture on ground-truth structure images (G_t + its D),
  3 texture on G_s's output with G_s frozen (the official "joint" model). A ``schedule`` runs
  several stages in one run, e.g. ``[{stage: 1, batches: n1}, {stage: 2, batches: n2}, ...]``.
* G_s loss: 4 x L1(out, smooth) + 1 x LSGAN adversarial (real = GT smooth image).
  G_t loss: 1 x adversarial + 5 x L1(out, gt) + 0.25 x sampling correctness; stage 3 adds
  250 x style(out*m, gt*m) + 0.1 x perceptual(out, gt). The official nets work in ``[-1, 1]``:
  L1 terms are computed on that scale (twice the ``[0, 1]`` L1) and VGG19 is fed ``[-1, 1]``
  images without ImageNet normalisation.
* Multi-scale LSGAN discriminators; D loss = mean over scales of (real + fake) / 2; the D step
  comes first and G's adversarial term re-runs the updated D (official order).
* Adam lr 1e-4, betas (0, 0.999), one rate for generators and discriminators (d2g_lr 1).

Structure images are computed with :func:`inpaintzoo.structure.rtv.rtv_smooth` (tsmooth's
lambda 0.015, sigma 3, sharpness 0.001, 3 iterations) in :meth:`prepare_batch` (batch key
``smooth``), optionally through an on-disk :class:`~inpaintzoo.structure.rtv.RTVCache`.
At inference the networks see only the known pixels: G_s's structure input is the RTV image of
the *masked* input (masked again), G_t gets G_s's output.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from inpaintzoo.blocks.flow import gaussian_sample
from inpaintzoo.losses import AdversarialLoss, VGG19Features, VGGLoss
from inpaintzoo.losses.perceptual import DEFAULT_PERCEPTUAL_LAYERS, DEFAULT_STYLE_LAYERS
from inpaintzoo.methods.base import InpaintingModule, not_none
from inpaintzoo.nets.structureflow import MIN_SIZE, SIZE_MULTIPLE, build_structureflow_nets
from inpaintzoo.structure.rtv import RTVCache, rtv_smooth

log = logging.getLogger(__name__)

STAGES = {1: "structure", 2: "texture (GT structure)", 3: "texture on G_s output (joint)"}

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


class StructureFlow(InpaintingModule):
    """StructureFlow: structure reconstructor + appearance-flow texture generator.

    Args (beyond :class:`InpaintingModule`'s):
        stage: 1 structure, 2 texture (GT structure), 3 texture on G_s output; used when
            ``schedule`` is empty.
        schedule: list of ``{"stage": s, "batches": n}`` (optionally ``"lr": x``), run in order;
            after the last entry its stage continues.
        gan_loss: ``lsgan`` (official) | ``nsgan`` | ``hinge``.
        structure_l1_weight, structure_adversarial_weight: G_s loss weights (4, 1).
        l1_weight, adversarial_weight, correctness_weight: G_t loss weights (5, 1, 0.25).
        perceptual_weight, style_weight: stage-3 VGG loss weights (0.1, 250). When both are 0
            no VGG is built and the (VGG-based) sampling correctness term is dropped too.
        perceptual_backbone: ``imagenet`` | ``random`` (timing only, logged).
        rtv_lambda, rtv_sigma, rtv_sharpness, rtv_iterations: RTV smoothing (0.015, 3, 0.001,
            3: the official MATLAB call at 256 px).
        rtv_cache_dir: optional on-disk cache of RTV images (keyed by image sha256).
        structure_channels, structure_res_blocks, texture_channels, texture_res_blocks,
        disc_channels: width overrides of the variant.
    """

    method_name: ClassVar[str] = "structureflow"
    size_multiple: ClassVar[int] = SIZE_MULTIPLE
    min_size: ClassVar[int] = MIN_SIZE
    value_range: ClassVar[str] = "[0,1]"
    inference_nets: ClassVar[tuple[str, ...]] = ("structure_generator", "texture_generator")
    vgg_attribute = "vgg_loss"
    vgg_terms = "perceptual, style, sampling correctness"

    def __init__(
        self,
        variant: str = "full",
        stage: int = 3,
        schedule: list[dict] | None = None,
        gan_loss: str = "lsgan",
        structure_l1_weight: float = 4.0,
        structure_adversarial_weight: float = 1.0,
        l1_weight: float = 5.0,
        adversarial_weight: float = 1.0,
        correctness_weight: float = 0.25,
        perceptual_weight: float = 0.1,
        style_weight: float = 250.0,
        perceptual_backbone: str = "imagenet",
        rtv_lambda: float = 0.015,
        rtv_sigma: float = 3.0,
        rtv_sharpness: float = 0.001,
        rtv_iterations: int = 3,
        rtv_cache_dir: str | None = None,
        structure_channels: int | None = None,
        structure_res_blocks: int | None = None,
        texture_channels: int | None = None,
        texture_res_blocks: int | None = None,
        disc_channels: int | None = None,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.999),
        d2g_lr: float = 1.0,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(variant=variant, lr=lr, betas=betas, d2g_lr=d2g_lr, **base_kwargs)
        self.save_method_hparams(
            variant=variant,
            stage=stage,
            schedule=schedule,
            gan_loss=gan_loss,
            structure_l1_weight=structure_l1_weight,
            structure_adversarial_weight=structure_adversarial_weight,
            l1_weight=l1_weight,
            adversarial_weight=adversarial_weight,
            correctness_weight=correctness_weight,
            perceptual_weight=perceptual_weight,
            style_weight=style_weight,
            perceptual_backbone=perceptual_backbone,
            rtv_lambda=rtv_lambda,
            rtv_sigma=rtv_sigma,
            rtv_sharpness=rtv_sharpness,
            rtv_iterations=rtv_iterations,
            rtv_cache_dir=rtv_cache_dir,
            structure_channels=structure_channels,
            structure_res_blocks=structure_res_blocks,
            texture_channels=texture_channels,
            texture_res_blocks=texture_res_blocks,
            disc_channels=disc_channels,
            lr=lr,
            betas=betas,
            d2g_lr=d2g_lr,
            **base_kwargs,
        )
        if int(stage) not in STAGES:
            raise ValueError(f"unknown StructureFlow stage {stage!r}; choose from {dict(STAGES)}")
        self.stage = int(stage)
        self.schedule = [dict(s) for s in (schedule or [])]
        for entry in self.schedule:
            unknown = set(entry) - {"stage", "batches", "lr"}
            if unknown:
                raise ValueError(f"bad schedule entry {entry!r}: unknown keys {sorted(unknown)}")
            if int(entry.get("stage", 0)) not in STAGES or int(entry.get("batches", -1)) < 0:
                raise ValueError(f"bad schedule entry {entry!r}: need stage in 1..3, batches >= 0")
        self.weights = {
            "structure_l1": float(structure_l1_weight),
            "structure_adversarial": float(structure_adversarial_weight),
            "l1": float(l1_weight),
            "adversarial": float(adversarial_weight),
            "correctness": float(correctness_weight),
            "perceptual": float(perceptual_weight),
            "style": float(style_weight),
        }
        self.rtv_params = {
            "lam": float(rtv_lambda),
            "sigma": float(rtv_sigma),
            "sharpness": float(rtv_sharpness),
            "iterations": int(rtv_iterations),
        }
        self.rtv_cache = RTVCache(rtv_cache_dir, **self.rtv_params) if rtv_cache_dir else None
        overrides = not_none(
            structure_channels=structure_channels,
            structure_res_blocks=structure_res_blocks,
            texture_channels=texture_channels,
            texture_res_blocks=texture_res_blocks,
            disc_channels=disc_channels,
        )
        nets = build_structureflow_nets(variant, **overrides)
        self.structure_generator = nets["structure_generator"]
        self.texture_generator = nets["texture_generator"]
        self.structure_discriminator = nets["structure_discriminator"]
        self.texture_discriminator = nets["texture_discriminator"]
        self.adversarial_loss = AdversarialLoss(gan_loss)
        self.perceptual_backbone = perceptual_backbone
        # VGG19 (perceptual, style, sampling correctness) is built lazily at fit start
        # (InpaintingModule.lazy_vgg).

    # ------------------------------------------------------------------ stages
    def current_stage(self) -> int:
        """The stage of the next batch, from the schedule and ``batches_seen``."""
        entry = self.current_schedule_entry()
        return self.stage if entry is None else int(entry["stage"])

    # ------------------------------------------------------------------ VGG losses
    @property
    def vgg_loss(self) -> VGGLoss | None:
        """Perceptual/style loss sharing one VGG19 that also gives relu3_1 (``None`` if off)."""

        def build() -> VGGLoss:
            layers = [*DEFAULT_PERCEPTUAL_LAYERS, *DEFAULT_STYLE_LAYERS, CORRECTNESS_LAYER]
            extractor = VGG19Features(layers, weights=self.perceptual_backbone)
            return VGGLoss(
                perceptual_weight=self.weights["perceptual"],
                style_weight=self.weights["style"],
                extractor=extractor,
            )

        return self.lazy_vgg(build)

    def run_notes(self) -> list[str]:
        """What makes this run differ from the paper recipe (recorded in results files)."""
        notes = self.vgg_notes()
        if self.variant != "full":
            notes.append(f"{self.variant} variant (reduced widths), not the paper's network")
        notes.append(self.schedule_note() or f"stage {self.stage} ({STAGES[self.stage]})")
        return notes

    def optimizer_specs(self):
        d_lr = self.lr * self.d2g_lr
        return {
            "structure_generator": (self.structure_generator.parameters(), self.lr),
            "structure_discriminator": (self.structure_discriminator.parameters(), d_lr),
            "texture_generator": (self.texture_generator.parameters(), self.lr),
            "texture_discriminator": (self.texture_discriminator.parameters(), d_lr),
        }

    # ------------------------------------------------------------------ structure maps
    def smooth(self, image: torch.Tensor) -> torch.Tensor:
        """RTV structure image of ``image`` (B, 3, H, W) in [0, 1], on its device."""
        if self.rtv_cache is not None:
            return self.rtv_cache(image)
        return rtv_smooth(image, **self.rtv_params)

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The ground-truth structure image ``smooth`` (RTV of the full image), on device."""
        batch = dict(batch)
        if "smooth" not in batch:
            batch["smooth"] = self.smooth(batch["image"])
        return batch

    # ------------------------------------------------------------------ losses
    def _adversarial_step(self, disc_name: str, real: torch.Tensor, fake: torch.Tensor):
        """D step on (real, fake.detach()), then G's adversarial term through the updated D."""
        disc = getattr(self, disc_name)
        real_out = disc(real)
        fake_out = disc(fake.detach())
        d_loss = sum(
            (self.adversarial_loss(r, True) + self.adversarial_loss(f, False)) / 2
            for r, f in zip(real_out, fake_out)
        ) / len(real_out)
        self.optimize({disc_name: d_loss}, disc_name)
        g_adv = sum(
            self.adversarial_loss(o, True, for_discriminator=False) for o in disc(fake)
        ) / len(real_out)
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
            out_pm, gt_pm, masked_pm = out * 2 - 1, image * 2 - 1, (masked * 2 - 1) * (1 - mask)
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
            self.structure_generator.eval()
            with torch.no_grad():
                structure = self.structure_generator(image * (1 - mask), smooth, mask)
            g_loss, step_logs = self._texture_step(image, structure, mask, with_style=True)
            self.optimize({"texture_g": g_loss}, "texture_generator", step_logs)
        logs.update(step_logs)
        return logs

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.current_stage() != 3:
            self.structure_generator.train()

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
                smooth = self.smooth(image)
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
