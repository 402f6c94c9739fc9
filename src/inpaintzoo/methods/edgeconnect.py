"""EdgeConnect (Nazeri et al., ICCVW 2019) as a LightningModule.

"Lines first, colour next": an edge generator G1 completes the Canny edge map of the hole from the
masked grayscale image, then an inpainting generator G2 fills the RGB hole guided by the edges.
Facts from ../shared/specs/edgeconnect.md (official repo knazeri/edge-connect, config.yml.example):

* Stages: 1 edge (G1+D1), 2 inpaint with ground-truth Canny edges (G2+D2), 3 inpaint on G1's
  predicted edges (G1 frozen), 4 joint (G2's loss also trains G1). The default run trains the
  paper's order 1 -> 2 -> 3 (25 / 37.5 / 37.5 % of the run; the paper trains each "until
  convergence", the official README calls stage 3 the final model).
* G1 loss: adversarial (weight 1) + feature matching on the 5 D1 layers (weight 10), both D1
  feature sets from the same (updated) discriminator, as the official step computes them from
  one D state.
  G2 loss: adversarial 0.1 + L1 normalised by the hole ratio 1 + perceptual 0.1 (VGG19
  relu1_1..relu5_1) + style 250 (Gram of relu2_2, 3_4, 4_4, 5_2 on ``o*m`` and ``y*m``).
  D loss = (real + fake) / 2 on the raw (not composited) output. nsgan by default
  (``gan_loss=lsgan_sigmoid`` is the official lsgan: its D ends in a sigmoid).
* Adam lr 1e-4, betas (0, 0.9); discriminators at 0.1 x lr.
* The official update (losses from one forward, D step, then G backward through the *updated* D)
  relies on pre-1.5 autograd; here D steps first and the G loss re-evaluates D(fake) after it.
* Canny sigma 2 at 256 px (``canny_sigma``; experiments at 64 px set ``structure_scale=0.5``).

Inputs are [0,1] images, mask 1 = hole; G1 input ``[gray*(1-m)+m, edge*(1-m), m]``, G2 input
``[image*(1-m)+m, edge]``. ``inpaint`` accepts an optional ``edge_sketch`` (B,1,H,W): white user
strokes added to the edge map inside the hole (sketch-guided editing), or a full ``edge`` map.
``inference_edges`` picks what G2 gets at inference: ``composite`` (G1 in the hole, Canny of the
known pixels elsewhere, as in training) or ``raw`` (G1's output everywhere, the official
``test.py``, which produced the paper's numbers).
"""

from __future__ import annotations

from typing import Any

import torch

from inpaintzoo.conventions import composite
from inpaintzoo.losses import VGGLoss, feature_matching_loss, hole_normalized_l1
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, Phase, Stage, register_method
from inpaintzoo.nets.edgeconnect import (
    EDGECONNECT_VARIANTS,
    OFFICIAL_PARAM_COUNTS,
    SIZE_MULTIPLE,
    build_edgeconnect_nets,
)
from inpaintzoo.structure import edge_precision_recall, rgb_to_gray

INFERENCE_EDGES = ("composite", "raw")
_EDGE = ("edge_generator", "edge_discriminator")
_INPAINT = ("inpaint_generator", "inpaint_discriminator")


@register_method
class EdgeConnect(InpaintingModule):
    """EdgeConnect: edge generator + inpainting generator, two SN-PatchGAN discriminators.

    Args (beyond :class:`InpaintingModule`'s and the contract's options):
        inference_edges: ``composite`` (default) or ``raw`` (the official ``test.py``).
    """

    contract = MethodContract(
        name="edgeconnect",
        paper="Nazeri et al., EdgeConnect: Structure Guided Image Inpainting using Edge "
        "Prediction, ICCV Workshops 2019",
        official_repo="knazeri/edge-connect",
        build_nets=build_edgeconnect_nets,
        variants=EDGECONNECT_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=("edge_generator", "inpaint_generator"),
        size_multiple=SIZE_MULTIPLE,
        min_size=16,  # the official demo never goes below; G needs 12, D 24 for a patch map
        losses={
            "l1": 1.0,
            "adversarial": 0.1,
            "perceptual": 0.1,
            "style": 250.0,
            "edge_adversarial": 1.0,
            "fm": 10.0,
        },
        lr=1e-4,
        betas=(0.0, 0.9),
        d2g_lr=0.1,
        gan_loss="nsgan",
        stages={
            1: Stage("edge", trains=_EDGE),
            2: Stage("inpaint", trains=_INPAINT),
            3: Stage(  # G1 fixed, in eval mode
                "edge-inpaint",
                trains=_INPAINT,
                needs=("edge_generator",),
                eval_nets=("edge_generator",),
            ),
            4: Stage("joint", trains=_EDGE + _INPAINT, needs=_EDGE[:1] + _INPAINT[:1]),
        },
        paper_schedule=(Phase(1, 0.25), Phase(2, 0.375), Phase(3, 0.375)),
        structure_inputs=("gray", "edge"),
        structure_params={"canny_sigma": 2.0},
        vgg_terms=("perceptual", "style"),
        guidance=("edge_sketch",),
        # stage 2 at the recipe lr 1e-4: measured +3.1 dB after 30 batches, +4.2 after 60
        learning=LearningCheck(stage=2, batches=30, min_gain_db=2.0),
    )
    vgg_attribute = "vgg_loss"

    def __init__(self, variant: str = "full", *, inference_edges: str = "composite", **options):
        super().__init__(variant, **options)
        if inference_edges not in INFERENCE_EDGES:
            raise ValueError(
                f"inference_edges must be one of {INFERENCE_EDGES}, got {inference_edges!r}"
            )
        self.inference_edges = inference_edges

    @property
    def vgg_loss(self) -> VGGLoss | None:
        return self.lazy_vgg(
            lambda: VGGLoss(
                perceptual_weight=self.weights["perceptual"],
                style_weight=self.weights["style"],
                weights=self.backbone_weights(),
            )
        )

    def optimizer_specs(self):
        # the official order (G1, D1, G2, D2): checkpoints keep their optimizer slots
        d_lr = self.lr * self.d2g_lr
        return {
            "edge_generator": (self.edge_generator.parameters(), self.lr),
            "edge_discriminator": (self.edge_discriminator.parameters(), d_lr),
            "inpaint_generator": (self.inpaint_generator.parameters(), self.lr),
            "inpaint_discriminator": (self.inpaint_discriminator.parameters(), d_lr),
        }

    # ------------------------------------------------------------------ networks
    def edge_input(self, gray: torch.Tensor, edge: torch.Tensor, mask: torch.Tensor):
        return torch.cat([gray * (1 - mask) + mask, edge * (1 - mask), mask], dim=1)

    def inpaint_input(self, image: torch.Tensor, edge: torch.Tensor, mask: torch.Tensor):
        return torch.cat([image * (1 - mask) + mask, edge], dim=1)

    # ------------------------------------------------------------------ training
    def _edge_step(self, gray, edge, mask):
        """D1 step, then G1's loss (returned, not yet applied) and its prediction."""
        pred = self.edge_generator(self.edge_input(gray, edge, mask))
        real, fake = torch.cat([gray, edge], dim=1), torch.cat([gray, pred], dim=1)
        d_loss, _ = self.discriminator_step("edge_discriminator", real, fake, scale=0.5)
        g_adv, (_, fake_feats) = self.generator_adversarial("edge_discriminator", fake)
        with torch.no_grad():  # real features from the same D state as the fake ones
            _, real_feats = self.edge_discriminator(real)
        fm = feature_matching_loss(fake_feats, real_feats)
        g_loss = self.weights["edge_adversarial"] * g_adv + self.weights["fm"] * fm
        logs = {"edge_d": d_loss, "edge_g_adv": g_adv, "edge_fm": fm, "edge_g": g_loss}
        return pred, g_loss, logs

    def inpaint_terms(self, out, image, mask, g_adv) -> dict[str, torch.Tensor]:
        """G2's unweighted terms: adversarial, L1 / hole ratio, perceptual(o, y), style(o*m, y*m)"""
        terms = {"adversarial": g_adv, "l1": hole_normalized_l1(out, image, mask)}
        vgg = self.vgg_loss
        if vgg is not None:
            terms.update(vgg(out, image, style_pred=out * mask, style_target=image * mask))
        return terms

    def _inpaint_step(self, image, edge_in, mask):
        """D2 step, then G2's loss (returned, not yet applied) and its output."""
        out = self.inpaint_generator(self.inpaint_input(image, edge_in, mask))
        d_loss, _ = self.discriminator_step("inpaint_discriminator", image, out, scale=0.5)
        g_adv, _ = self.generator_adversarial("inpaint_discriminator", out)
        terms = self.inpaint_terms(out, image, mask, g_adv)
        g_loss = sum(self.weights[k] * v for k, v in terms.items())
        logs = {"inpaint_d": d_loss, "inpaint_g": g_loss}
        logs.update({f"inpaint_{k}": v for k, v in terms.items()})
        return out, g_loss, logs

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask, gray, edge = batch["image"], batch["mask"], batch["gray"], batch["edge"]
        stage = self.current_stage()
        logs: dict[str, torch.Tensor] = {"stage": torch.tensor(float(stage))}
        if stage == 1:
            _, g_loss, step_logs = self._edge_step(gray, edge, mask)
            self.optimize({"edge_g": g_loss}, "edge_generator", step_logs)
        elif stage in (2, 3):
            edge_in = edge
            if stage == 3:  # G1 frozen: its prediction in the hole, ground truth outside
                with torch.no_grad():
                    pred_edge = self.edge_generator(self.edge_input(gray, edge, mask))
                edge_in = composite(pred_edge, edge, mask)
            _, g_loss, step_logs = self._inpaint_step(image, edge_in, mask)
            self.optimize({"inpaint_g": g_loss}, "inpaint_generator", step_logs)
        else:  # joint: G2's loss back-propagates into G1 through the composited edges
            pred_edge, e_loss, edge_logs = self._edge_step(gray, edge, mask)
            edge_in = composite(pred_edge, edge, mask)
            _, i_loss, step_logs = self._inpaint_step(image, edge_in, mask)
            step_logs.update(edge_logs)
            self.optimize(
                {"inpaint_g": i_loss, "edge_g": e_loss},
                ["inpaint_generator", "edge_generator"],
                step_logs,
            )
        logs.update(step_logs)
        return logs

    # ------------------------------------------------------------------ inference
    def predict_edges(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Canny edges of the known region (test mode) and G1's completion of the hole."""
        gray = rgb_to_gray(image)
        # test mode (skimage canny(mask=valid)): masked smoothing, no edges in/at the hole
        edge_known = self.edge_map(gray, mask=mask)
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

        ``edge``: a full edge map to use instead of G1's (stage-2 validation with GT edges, or
        an edited map); ``edge_sketch``: user strokes (B,1,H,W) in [0,1], added in the hole.
        """
        if edge is None:
            maps = self.predict_edges(image, mask)
            edge = maps["edge_pred"]
            if self.inference_edges == "composite":
                edge = composite(edge, maps["edge_known"], mask)
        if edge_sketch is not None:
            if edge_sketch.shape != mask.shape:
                raise ValueError(
                    f"edge_sketch of shape {tuple(edge_sketch.shape)} must match the mask "
                    f"{tuple(mask.shape)}"
                )
            edge = torch.maximum(edge, (edge_sketch > 0.5).float() * mask)
        out = self.inpaint_generator(self.inpaint_input(image, edge, mask))
        return {"output": out, "edge": edge}

    def inference_extras(self, batch: dict[str, Any]) -> dict[str, Any]:
        # A stage-2 model has only been trained on ground-truth edges: validate it that way.
        return {"edge": batch["edge"]} if self.current_stage() == 2 else {}

    def eval_logs(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        precision, recall = edge_precision_recall(out["edge"], batch["edge"], mask=batch["mask"])
        return {"edge_precision": precision, "edge_recall": recall}

    def extra_sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        return {"predicted edges": 1.0 - out["edge"]}  # black lines on white, as in the paper
