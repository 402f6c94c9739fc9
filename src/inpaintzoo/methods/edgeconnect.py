"""EdgeConnect (Nazeri et al., ICCVW 2019) as a LightningModule.

"Lines first, colour next": an edge generator G1 completes the Canny edge map of the hole from the
masked grayscale image, then an inpainting generator G2 fills the RGB hole guided by the edges.
Facts from ../shared/specs/edgeconnect.md (official repo knazeri/edge-connect, config.yml.example):

* Stages: 1 edge (G1+D1), 2 inpaint with ground-truth Canny edges (G2+D2), 3 inpaint on G1's
  predicted edges (G1 frozen), 4 joint (G2's loss also trains G1). A ``schedule`` runs several
  stages in one run, e.g. ``[{stage: 1, batches: 100}, {stage: 2, batches: 100}, ...]``.
* G1 loss: adversarial (weight 1) + feature matching on the 5 D1 layers (weight 10).
  G2 loss: adversarial 0.1 + L1 normalised by the hole ratio 1 + perceptual 0.1 (VGG19
  relu1_1..relu5_1) + style 250 (Gram of relu2_2, 3_4, 4_4, 5_2 on ``o*m`` and ``y*m``).
  D loss = (real + fake) / 2 on the raw (not composited) output. nsgan by default.
* Adam lr 1e-4, betas (0, 0.9); discriminators at 0.1 x lr.
* The official update (losses from one forward, D step, then G backward through the *updated* D)
  relies on pre-1.5 autograd; here D steps first and the G loss re-evaluates D(fake) after it.
* Canny sigma 2 at 256 px (about 1 at 64 px: a data setting, ``canny_sigma``).

Inputs are [0,1] images, mask 1 = hole; G1 input ``[gray*(1-m)+m, edge*(1-m), m]``, G2 input
``[image*(1-m)+m, edge]``. ``inpaint`` accepts an optional ``edge_sketch`` (B,1,H,W): white user
strokes added to the edge map inside the hole (sketch-guided editing).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch

from inpaintzoo.losses import (
    AdversarialLoss,
    VGGLoss,
    feature_matching_loss,
    hole_normalized_l1,
)
from inpaintzoo.methods.base import InpaintingModule, not_none
from inpaintzoo.nets.edgeconnect import build_edgeconnect_nets
from inpaintzoo.structure import canny_edges, edge_precision_recall, rgb_to_gray

log = logging.getLogger(__name__)

STAGES = {1: "edge", 2: "inpaint", 3: "edge-inpaint", 4: "joint"}


class EdgeConnect(InpaintingModule):
    """EdgeConnect: edge generator + inpainting generator, two SN-PatchGAN discriminators.

    Args (beyond :class:`InpaintingModule`'s):
        stage: 1 edge, 2 inpaint (GT edges), 3 edge-inpaint, 4 joint; used when ``schedule``
            is empty.
        schedule: list of ``{"stage": s, "batches": n}`` (optionally ``"lr": x`` for that
            stage's generator rate, discriminators at ``d2g_lr`` of it) run in order; after the
            last entry its stage continues.
        canny_sigma: Gaussian sigma of the Canny detector (2 at 256 px, ~1 at 64 px).
        gan_loss: ``nsgan`` | ``lsgan`` | ``hinge``.
        l1_weight, adversarial_weight, perceptual_weight, style_weight: G2 loss weights.
        edge_adversarial_weight, fm_weight: G1 loss weights.
        perceptual_backbone: ``imagenet`` (needs the VGG19 file in the torch cache) or ``random``
            (timing only; logged). Unused when both VGG weights are 0.
        base_channels, num_residual_blocks, disc_channels: width overrides of the variant.
    """

    method_name: ClassVar[str] = "edgeconnect"
    size_multiple: ClassVar[int] = 4
    min_size: ClassVar[int] = 16
    value_range: ClassVar[str] = "[0,1]"
    inference_nets: ClassVar[tuple[str, ...]] = ("edge_generator", "inpaint_generator")
    vgg_attribute = "vgg_loss"

    def __init__(
        self,
        variant: str = "full",
        stage: int = 3,
        schedule: list[dict] | None = None,
        canny_sigma: float = 2.0,
        gan_loss: str = "nsgan",
        l1_weight: float = 1.0,
        adversarial_weight: float = 0.1,
        perceptual_weight: float = 0.1,
        style_weight: float = 250.0,
        edge_adversarial_weight: float = 1.0,
        fm_weight: float = 10.0,
        perceptual_backbone: str = "imagenet",
        base_channels: int | None = None,
        num_residual_blocks: int | None = None,
        disc_channels: int | None = None,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        d2g_lr: float = 0.1,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(variant=variant, lr=lr, betas=betas, d2g_lr=d2g_lr, **base_kwargs)
        self.save_method_hparams(
            variant=variant,
            stage=stage,
            schedule=schedule,
            canny_sigma=canny_sigma,
            gan_loss=gan_loss,
            l1_weight=l1_weight,
            adversarial_weight=adversarial_weight,
            perceptual_weight=perceptual_weight,
            style_weight=style_weight,
            edge_adversarial_weight=edge_adversarial_weight,
            fm_weight=fm_weight,
            perceptual_backbone=perceptual_backbone,
            base_channels=base_channels,
            num_residual_blocks=num_residual_blocks,
            disc_channels=disc_channels,
            lr=lr,
            betas=betas,
            d2g_lr=d2g_lr,
            **base_kwargs,
        )
        if int(stage) not in STAGES:
            raise ValueError(f"unknown EdgeConnect stage {stage!r}; choose from {dict(STAGES)}")
        self.stage = int(stage)
        self.schedule = [dict(s) for s in (schedule or [])]
        for entry in self.schedule:
            unknown = set(entry) - {"stage", "batches", "lr"}
            if unknown:
                raise ValueError(f"bad schedule entry {entry!r}: unknown keys {sorted(unknown)}")
            if int(entry.get("stage", 0)) not in STAGES or int(entry.get("batches", -1)) < 0:
                raise ValueError(f"bad schedule entry {entry!r}: need stage in 1..4, batches >= 0")
        self.canny_sigma = float(canny_sigma)
        self.weights = {
            "l1": float(l1_weight),
            "adversarial": float(adversarial_weight),
            "perceptual": float(perceptual_weight),
            "style": float(style_weight),
            "edge_adversarial": float(edge_adversarial_weight),
            "fm": float(fm_weight),
        }
        overrides = not_none(
            base_channels=base_channels,
            num_residual_blocks=num_residual_blocks,
            disc_channels=disc_channels,
        )
        nets = build_edgeconnect_nets(variant, **overrides)
        self.edge_generator = nets["edge_generator"]
        self.inpaint_generator = nets["inpaint_generator"]
        self.edge_discriminator = nets["edge_discriminator"]
        self.inpaint_discriminator = nets["inpaint_discriminator"]
        self.adversarial_loss = AdversarialLoss(gan_loss)
        self.perceptual_backbone = perceptual_backbone
        # The VGG19 loss is built lazily at fit start (InpaintingModule.lazy_vgg).

    # ------------------------------------------------------------------ stages
    def current_stage(self) -> int:
        """The stage of the next batch, from the schedule and ``batches_seen``."""
        entry = self.current_schedule_entry()
        return self.stage if entry is None else int(entry["stage"])

    # ------------------------------------------------------------------ losses
    @property
    def vgg_loss(self) -> VGGLoss | None:
        return self.lazy_vgg(
            lambda: VGGLoss(
                perceptual_weight=self.weights["perceptual"],
                style_weight=self.weights["style"],
                weights=self.perceptual_backbone,
            )
        )

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
            "edge_generator": (self.edge_generator.parameters(), self.lr),
            "edge_discriminator": (self.edge_discriminator.parameters(), d_lr),
            "inpaint_generator": (self.inpaint_generator.parameters(), self.lr),
            "inpaint_discriminator": (self.inpaint_discriminator.parameters(), d_lr),
        }

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Grayscale and Canny edges of the full image, on the module's device."""
        batch = dict(batch)
        if "gray" not in batch:
            batch["gray"] = rgb_to_gray(batch["image"])
        if "edge" not in batch:
            batch["edge"] = canny_edges(batch["gray"], sigma=self.canny_sigma)
        return batch

    # ------------------------------------------------------------------ networks
    def edge_input(self, gray: torch.Tensor, edge: torch.Tensor, mask: torch.Tensor):
        return torch.cat([gray * (1 - mask) + mask, edge * (1 - mask), mask], dim=1)

    def inpaint_input(self, image: torch.Tensor, edge: torch.Tensor, mask: torch.Tensor):
        return torch.cat([image * (1 - mask) + mask, edge], dim=1)

    def _edge_step(self, gray, edge, mask, train_generator: bool = True):
        """D1 step, then G1's loss (returned, not yet applied) and its prediction."""
        pred = self.edge_generator(self.edge_input(gray, edge, mask))
        real_in = torch.cat([gray, edge], dim=1)
        real_logits, real_feats = self.edge_discriminator(real_in)
        fake_logits, _ = self.edge_discriminator(torch.cat([gray, pred.detach()], dim=1))
        d_loss = (
            self.adversarial_loss(real_logits, True) + self.adversarial_loss(fake_logits, False)
        ) / 2
        self.optimize({"edge_d": d_loss}, "edge_discriminator")
        g_logits, g_feats = self.edge_discriminator(torch.cat([gray, pred], dim=1))
        g_adv = self.adversarial_loss(g_logits, True, for_discriminator=False)
        fm = feature_matching_loss(g_feats, [f.detach() for f in real_feats])
        g_loss = self.weights["edge_adversarial"] * g_adv + self.weights["fm"] * fm
        logs = {"edge_d": d_loss, "edge_g_adv": g_adv, "edge_fm": fm, "edge_g": g_loss}
        return pred, g_loss, logs

    def _inpaint_step(self, image, edge_in, mask):
        """D2 step, then G2's loss (returned, not yet applied) and its output."""
        out = self.inpaint_generator(self.inpaint_input(image, edge_in, mask))
        real_logits, _ = self.inpaint_discriminator(image)
        fake_logits, _ = self.inpaint_discriminator(out.detach())
        d_loss = (
            self.adversarial_loss(real_logits, True) + self.adversarial_loss(fake_logits, False)
        ) / 2
        self.optimize({"inpaint_d": d_loss}, "inpaint_discriminator")
        g_logits, _ = self.inpaint_discriminator(out)
        terms = {
            "adversarial": self.adversarial_loss(g_logits, True, for_discriminator=False),
            "l1": hole_normalized_l1(out, image, mask),
        }
        vgg = self.vgg_loss
        if vgg is not None:
            vgg_terms = vgg(out, image, style_pred=out * mask, style_target=image * mask)
            terms["perceptual"] = vgg_terms["perceptual"]
            terms["style"] = vgg_terms["style"]
        g_loss = sum(self.weights[k] * v for k, v in terms.items())
        logs = {"inpaint_d": d_loss, "inpaint_g": g_loss}
        logs.update({f"inpaint_{k}": v for k, v in terms.items()})
        return out, g_loss, logs

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask, gray, edge = batch["image"], batch["mask"], batch["gray"], batch["edge"]
        stage = self.current_stage()
        logs: dict[str, torch.Tensor] = {"stage": torch.tensor(float(stage))}
        if stage == 1:
            _, g_loss, edge_logs = self._edge_step(gray, edge, mask)
            self.optimize({"edge_g": g_loss}, "edge_generator", edge_logs)
            logs.update(edge_logs)
        elif stage == 2:
            _, g_loss, inp_logs = self._inpaint_step(image, edge, mask)
            self.optimize({"inpaint_g": g_loss}, "inpaint_generator", inp_logs)
            logs.update(inp_logs)
        elif stage == 3:
            self.edge_generator.eval()
            with torch.no_grad():
                pred_edge = self.edge_generator(self.edge_input(gray, edge, mask))
            edge_in = (pred_edge * mask + edge * (1 - mask)).detach()
            _, g_loss, inp_logs = self._inpaint_step(image, edge_in, mask)
            self.optimize({"inpaint_g": g_loss}, "inpaint_generator", inp_logs)
            logs.update(inp_logs)
        else:  # joint: G2's loss back-propagates into G1 through the composited edges
            pred_edge, e_loss, edge_logs = self._edge_step(gray, edge, mask)
            edge_in = pred_edge * mask + edge * (1 - mask)
            _, i_loss, inp_logs = self._inpaint_step(image, edge_in, mask)
            self.optimize(
                {"inpaint_g": i_loss, "edge_g": e_loss},
                ["inpaint_generator", "edge_generator"],
                {**edge_logs, **inp_logs},
            )
            logs.update(edge_logs)
            logs.update(inp_logs)
        return logs

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Stage 3 keeps G1 frozen in eval mode; every other stage trains it.
        if self.current_stage() != 3:
            self.edge_generator.train()

    # ------------------------------------------------------------------ inference
    def predict_edges(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Canny edges of the known region (test mode) and G1's completion of the hole."""
        gray = rgb_to_gray(image)
        # test mode (skimage canny(mask=valid)): masked smoothing, no edges in/at the hole
        edge_known = canny_edges(gray, sigma=self.canny_sigma, mask=mask)
        pred = self.edge_generator(self.edge_input(gray, edge_known, mask))
        return {"gray": gray, "edge_known": edge_known, "edge_pred": pred}

    def inpaint_raw(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        edge: torch.Tensor | None = None,
        edge_sketch: torch.Tensor | None = None,
        **extras: Any,
    ) -> dict:
        """``image`` arrives with the hole zeroed (see ``inpaint``).

        ``edge``: a full edge map to use instead of G1's (stage-2 validation with GT edges);
        ``edge_sketch``: user strokes (B,1,H,W) in [0,1], added to the edge map in the hole.
        """
        if edge is None:
            maps = self.predict_edges(image, mask)
            edge_full = maps["edge_pred"] * mask + maps["edge_known"] * (1 - mask)
        else:
            edge_full = edge
        if edge_sketch is not None:
            if edge_sketch.shape != mask.shape:
                raise ValueError(
                    f"edge_sketch of shape {tuple(edge_sketch.shape)} must match the mask "
                    f"{tuple(mask.shape)}"
                )
            edge_full = torch.maximum(edge_full, (edge_sketch > 0.5).float() * mask)
        out = self.inpaint_generator(self.inpaint_input(image, edge_full, mask))
        return {"output": out, "edge": edge_full}

    def inference_extras(self, batch: dict[str, Any]) -> dict[str, Any]:
        # A stage-2 model has only been trained on ground-truth edges: validate it that way.
        return {"edge": batch["edge"]} if self.current_stage() == 2 else {}

    def eval_logs(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        precision, recall = edge_precision_recall(out["edge"], batch["edge"], mask=batch["mask"])
        return {"edge_precision": precision, "edge_recall": recall}

    def extra_sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        return {"predicted edges": 1.0 - out["edge"]}  # black lines on white, as in the paper
