"""CTSDG (Guo, Yang, Huang, ICCV 2021) as a LightningModule.

"Conditional texture and structure dual generation": a two-stream partial-convolution generator
(texture from the masked image, structure from the masked edge + gray maps, each decoder starting
from the *other* stream's deepest feature), Bi-GFF fusion, CFA, and a discriminator that judges
the image (texture branch) and its edges (structure branch; a learned edge detector supplies the
edges of fake images). Facts from ``../shared/specs/ctsdg.md`` (xiefan-guo/ctsdg ``trainer.py``,
``criteria/loss.py``, ``options/train_options.py``):

* G loss = 60 L_hole + 10 L_valid + 0.1 L_perc + 250 L_style + 0.1 L_adv + 1 L_inter with
  ``L_hole = mean|(1-M)(O-Y)|``, ``L_valid = mean|M(O-Y)|`` (plain means, [-1,1] images),
  perceptual/style on VGG16 pool1..pool3 of the output and of the composite vs the ground truth
  ([-1,1] input, no ImageNet normalisation), ``L_adv = BCE(D(O), 1) + BCE(edge_detector(O),
  Canny(Y))``, ``L_inter = BCE(projected_edge, Canny(Y)) + L1(projected_image, Y)``.
* D loss = BCE(D(Y), 1) + BCE(D(O), 0) + BCE(edge_detector(Y), Canny(Y)) +
  BCE(edge_detector(O), Canny(Y)), on the raw output.
* Per batch: generator step first (discriminator frozen), then the discriminator step.
* Adam, default betas (0.9, 0.999); lr 2e-4 then fine-tuning at 5e-5 with every BatchNorm of
  the generator in eval mode (official ``freeze_ec_bn``); discriminator at 0.1 x lr.

Differences (documented in docs/methods/ctsdg.md): gray and Canny are computed on the ``[0, 1]``
image (the official loader computes them on a wrapped-around uint8 copy of the normalised
image); at inference the Canny map of the known region is computed in test mode (no hole
content, no edges on the hole border), so the network never sees hole pixels.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.losses import AdversarialLoss, MissingWeightsError, gram_matrix
from inpaintzoo.losses.perceptual import exclude_from_state_dict, hub_checkpoint_path
from inpaintzoo.methods.base import InpaintingModule, not_none
from inpaintzoo.nets.ctsdg import CTSDG_VARIANTS, build_ctsdg_nets
from inpaintzoo.structure import canny_edges, edge_precision_recall, rgb_to_gray

log = logging.getLogger(__name__)

STAGES = ("train", "finetune")
FREEZE_BN_CHOICES = ("generator", "encoder", "none")

#: torchvision ``vgg16().features`` up to pool3 (index 16); "M" = max-pool.
_VGG16_TO_POOL3: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
#: the official slices ``features[:5]``, ``[5:10]``, ``[10:17]`` end at pool1, pool2, pool3.
VGG16_POOL_SLICES: tuple[tuple[int, int], ...] = ((0, 5), (5, 10), (10, 17))


def _vgg16_url() -> str:
    from torchvision.models import VGG16_Weights

    return VGG16_Weights.IMAGENET1K_V1.url


class VGG16PoolFeatures(nn.Module):
    """Frozen VGG16 ``features[:17]``: ``forward(x) -> [pool1, pool2, pool3]`` (CTSDG's
    ``VGG16FeatureExtractor``).

    Args:
        weights: ``"imagenet"`` (torchvision ``VGG16_Weights.IMAGENET1K_V1``, read from the torch
            hub cache; :class:`~inpaintzoo.losses.MissingWeightsError` when absent, nothing is
            downloaded) or ``"random"`` (same layers, torchvision's VGG init; timing only).

    Input ``(B, 3, H, W)`` as given (CTSDG feeds ``[-1, 1]`` images, no ImageNet
    normalisation). Parameters never require grad; kept out of ``state_dict()``.
    """

    def __init__(self, weights: str = "imagenet") -> None:
        super().__init__()
        if weights not in ("imagenet", "random"):
            raise ValueError(f"weights must be 'imagenet' or 'random', got {weights!r}")
        path = hub_checkpoint_path(_vgg16_url())
        if weights == "imagenet" and not path.is_file():
            raise MissingWeightsError(
                f"CTSDG's perceptual/style loss needs the VGG16 ImageNet file {path}, which is "
                f"not in the torch hub cache (torch.hub.get_dir() = {torch.hub.get_dir()}). "
                f"Nothing is downloaded automatically: download {_vgg16_url()} on a machine "
                "with internet access and copy it there, or switch the VGG-based losses off "
                "(perceptual_weight=0 and style_weight=0), or for timing only use "
                "perceptual_backbone=random."
            )
        layers: list[nn.Module] = []
        cin = 3
        for item in _VGG16_TO_POOL3:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU()]
                cin = int(item)
        self.features = nn.Sequential(*layers)
        self.weights = weights
        if weights == "imagenet":
            state = torch.load(path, map_location="cpu", weights_only=True)
            sub = {
                k[len("features.") :]: v
                for k, v in state.items()
                if k.startswith("features.") and int(k.split(".")[1]) < len(layers)
            }
            self.features.load_state_dict(sub, strict=True)
        else:
            log.warning("CTSDG: VGG16 loss backbone is RANDOMLY initialised (timing only)")
            for m in self.features.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)
        exclude_from_state_dict(self)

    def train(self, mode: bool = True) -> VGG16PoolFeatures:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for start, end in VGG16_POOL_SLICES:
            x = self.features[start:end](x)
            feats.append(x)
        return feats


def ctsdg_perceptual_style(
    extractor: nn.Module,
    output: torch.Tensor,
    composite: torch.Tensor,
    target: torch.Tensor,
    need_perceptual: bool = True,
    need_style: bool = True,
) -> dict[str, torch.Tensor]:
    """CTSDG's perceptual and style terms (unweighted), images already in the backbone's range.

    ``perceptual = sum_i L1(phi_i(O), phi_i(Y)) + L1(phi_i(C), phi_i(Y))`` and ``style`` the same
    on Gram matrices ``F F^T / (C H W)``. Target features are computed without gradient.
    """
    f_out = extractor(output)
    f_comp = extractor(composite)
    with torch.no_grad():
        f_gt = extractor(target)
    zero = output.new_zeros((), dtype=torch.float32)
    perceptual, style = zero, zero.clone()
    for fo, fc, fg in zip(f_out, f_comp, f_gt):
        if need_perceptual:
            perceptual = perceptual + F.l1_loss(fo.float(), fg.float())
            perceptual = perceptual + F.l1_loss(fc.float(), fg.float())
        if need_style:
            gram_gt = gram_matrix(fg)
            style = style + F.l1_loss(gram_matrix(fo), gram_gt)
            style = style + F.l1_loss(gram_matrix(fc), gram_gt)
    return {"perceptual": perceptual, "style": style}


def _bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


class _Frozen:
    """Context manager: ``requires_grad=False`` on a module's parameters, restored on exit."""

    def __init__(self, module: nn.Module) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad]

    def __enter__(self) -> None:
        for p in self.params:
            p.requires_grad_(False)

    def __exit__(self, *exc: Any) -> None:
        for p in self.params:
            p.requires_grad_(True)


class CTSDG(InpaintingModule):
    """CTSDG: two-stream texture/structure generator, texture+structure discriminator.

    Args (beyond :class:`InpaintingModule`'s):
        stage: ``"train"`` or ``"finetune"`` (generator BatchNorms frozen); used when
            ``schedule`` is empty.
        schedule: list of ``{"stage": "train"|"finetune", "batches": n, "lr": x}`` run in order
            (``lr`` optional: that phase's generator rate, the discriminator at ``d2g_lr`` of
            it); after the last entry its stage continues.
        canny_sigma: Canny sigma (2 at 256 px, about 1 at 64 px).
        gan_loss: ``nsgan`` (official BCE) | ``lsgan`` | ``hinge`` for the image/edge realness
            maps; the edge detector terms are always BCE.
        hole_weight, valid_weight, perceptual_weight, style_weight, adversarial_weight,
        intermediate_weight: the G loss weights (60, 10, 0.1, 250, 0.1, 1).
        finetune_freeze_bn: BatchNorms put in eval mode while fine-tuning: ``generator`` (all,
            the official ``freeze_ec_bn``), ``encoder`` (the two encoders only, as PConv) or
            ``none``.
        perceptual_backbone: ``imagenet`` or ``random`` (timing only).
        base_channels, max_channels, num_levels, disc_channels: overrides of the variant.
    """

    method_name: ClassVar[str] = "ctsdg"
    size_multiple: ClassVar[int] = 128
    min_size: ClassVar[int] = 128
    value_range: ClassVar[str] = "[0,1]"
    inference_nets: ClassVar[tuple[str, ...]] = ("generator",)
    vgg_attribute = "vgg"

    def __init__(
        self,
        variant: str = "full",
        stage: str = "train",
        schedule: list[dict] | None = None,
        canny_sigma: float = 2.0,
        gan_loss: str = "nsgan",
        hole_weight: float = 60.0,
        valid_weight: float = 10.0,
        perceptual_weight: float = 0.1,
        style_weight: float = 250.0,
        adversarial_weight: float = 0.1,
        intermediate_weight: float = 1.0,
        finetune_freeze_bn: str = "generator",
        perceptual_backbone: str = "imagenet",
        base_channels: int | None = None,
        max_channels: int | None = None,
        num_levels: int | None = None,
        disc_channels: int | None = None,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        d2g_lr: float = 0.1,
        **base_kwargs: Any,
    ) -> None:
        super().__init__(variant=variant, lr=lr, betas=betas, d2g_lr=d2g_lr, **base_kwargs)
        if variant not in CTSDG_VARIANTS:
            raise ValueError(
                f"unknown CTSDG variant {variant!r}; choose one of {sorted(CTSDG_VARIANTS)}"
            )
        levels = int(num_levels or CTSDG_VARIANTS[variant]["num_levels"])
        # Per instance: the tiny variant (fewer levels) accepts smaller sizes; stored in hparams.
        self.size_multiple = 2**levels
        self.min_size = 2**levels
        self.save_method_hparams(
            variant=variant,
            stage=stage,
            schedule=schedule,
            canny_sigma=canny_sigma,
            gan_loss=gan_loss,
            hole_weight=hole_weight,
            valid_weight=valid_weight,
            perceptual_weight=perceptual_weight,
            style_weight=style_weight,
            adversarial_weight=adversarial_weight,
            intermediate_weight=intermediate_weight,
            finetune_freeze_bn=finetune_freeze_bn,
            perceptual_backbone=perceptual_backbone,
            base_channels=base_channels,
            max_channels=max_channels,
            num_levels=num_levels,
            disc_channels=disc_channels,
            lr=lr,
            betas=betas,
            d2g_lr=d2g_lr,
            **base_kwargs,
        )
        if stage not in STAGES:
            raise ValueError(f"unknown CTSDG stage {stage!r}; choose one of {STAGES}")
        self.stage = stage
        self.schedule = [dict(s) for s in (schedule or [])]
        for entry in self.schedule:
            unknown = set(entry) - {"stage", "batches", "lr"}
            if unknown:
                raise ValueError(f"bad schedule entry {entry!r}: unknown keys {sorted(unknown)}")
            if entry.get("stage") not in STAGES or int(entry.get("batches", -1)) < 0:
                raise ValueError(
                    f"bad schedule entry {entry!r}: need stage in {STAGES} and batches >= 0"
                )
        if finetune_freeze_bn not in FREEZE_BN_CHOICES:
            raise ValueError(
                f"unknown finetune_freeze_bn {finetune_freeze_bn!r}; choose one of "
                f"{FREEZE_BN_CHOICES}"
            )
        self.finetune_freeze_bn = finetune_freeze_bn
        self.canny_sigma = float(canny_sigma)
        self.weights = {
            "hole": float(hole_weight),
            "valid": float(valid_weight),
            "perceptual": float(perceptual_weight),
            "style": float(style_weight),
            "adversarial": float(adversarial_weight),
            "intermediate": float(intermediate_weight),
        }
        overrides = not_none(
            base_channels=base_channels,
            max_channels=max_channels,
            num_levels=num_levels,
            disc_channels=disc_channels,
        )
        nets = build_ctsdg_nets(variant, **overrides)
        self.generator = nets["generator"]
        self.discriminator = nets["discriminator"]
        self.adversarial_loss = AdversarialLoss(gan_loss)
        self.perceptual_backbone = perceptual_backbone
        # VGG16 is built lazily at fit start (InpaintingModule.lazy_vgg).

    # ------------------------------------------------------------------ stages
    def current_stage(self) -> str:
        entry = self.current_schedule_entry()
        return self.stage if entry is None else str(entry["stage"])

    def frozen_batch_norms(self) -> list[nn.Module]:
        """The BatchNorms held in eval mode while fine-tuning."""
        if self.finetune_freeze_bn == "none":
            return []
        roots: list[nn.Module] = [self.generator]
        if self.finetune_freeze_bn == "encoder":
            roots = [self.generator.texture_encoder, self.generator.structure_encoder]
        return [
            m for r in roots for m in r.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.generator.train()
        if self.current_stage() == "finetune":
            for bn in self.frozen_batch_norms():
                bn.eval()

    # ------------------------------------------------------------------ losses
    @property
    def vgg(self) -> VGG16PoolFeatures | None:
        return self.lazy_vgg(lambda: VGG16PoolFeatures(self.perceptual_backbone))

    def run_notes(self) -> list[str]:
        notes = self.vgg_notes()
        if self.variant != "full":
            notes.append(
                f"{self.variant} variant ({self.generator.num_levels} levels, reduced widths), "
                "not the paper's network"
            )
        if self.schedule:
            phases = ", ".join(
                f"{e['stage']}: {e['batches']}" + (f" at lr {e['lr']:g}" if e.get("lr") else "")
                for e in self.schedule
            )
            notes.append(f"schedule in batches: {phases}")
        else:
            notes.append(f"stage {self.stage}")
        return notes

    def optimizer_specs(self):
        return {
            "generator": (self.generator.parameters(), self.lr),
            "discriminator": (self.discriminator.parameters(), self.lr * self.d2g_lr),
        }

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Gray and Canny edges of the full image, on the module's device."""
        batch = dict(batch)
        if "gray" not in batch:
            batch["gray"] = rgb_to_gray(batch["image"])
        if "edge" not in batch:
            batch["edge"] = canny_edges(batch["gray"], sigma=self.canny_sigma)
        return batch

    def generator_losses(
        self, batch: dict[str, Any], out: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Unweighted G terms for a generator output ``out`` (D must be frozen by the caller)."""
        image, mask, gray, edge = batch["image"], batch["mask"], batch["gray"], batch["edge"]
        output = out["output"]
        # The official L1 terms live in [-1, 1]: differences are twice those in [0, 1].
        diff = (output.float() - image.float()) * 2.0
        terms = {
            "hole": (diff * mask).abs().mean(),
            "valid": (diff * (1.0 - mask)).abs().mean(),
        }
        vgg = self.vgg
        if vgg is not None:
            comp = image * (1.0 - mask) + output * mask
            vgg_terms = ctsdg_perceptual_style(
                vgg,
                output * 2.0 - 1.0,
                comp * 2.0 - 1.0,
                image * 2.0 - 1.0,
                need_perceptual=self.weights["perceptual"] != 0,
                need_style=self.weights["style"] != 0,
            )
            terms.update(vgg_terms)
        logits, edge_logits = self.discriminator(output, gray)
        terms["adversarial"] = self.adversarial_loss(logits, True, for_discriminator=False) + _bce(
            edge_logits, edge
        )
        terms["intermediate"] = (
            _bce(out["projected_edge_logits"], edge)
            + ((out["projected_image"].float() - image.float()) * 2.0).abs().mean()
        )
        return terms

    def discriminator_loss(self, batch: dict[str, Any], output: torch.Tensor) -> torch.Tensor:
        image, gray, edge = batch["image"], batch["gray"], batch["edge"]
        real_logits, real_edge_logits = self.discriminator(image, gray, edge)
        fake_logits, fake_edge_logits = self.discriminator(output.detach(), gray)
        return (
            self.adversarial_loss(real_logits, True)
            + self.adversarial_loss(fake_logits, False)
            + _bce(real_edge_logits, edge)
            + _bce(fake_edge_logits, edge)
        )

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        masked = image * (1.0 - mask)
        out = self.generator(masked, batch["edge"] * (1.0 - mask), batch["gray"], mask)
        with _Frozen(self.discriminator):
            terms = self.generator_losses(batch, out)
            g_loss = sum(self.weights[k] * v for k, v in terms.items())
            self.optimize({"g": g_loss}, "generator", terms)
        d_loss = self.discriminator_loss(batch, out["output"])  # G output detached inside
        self.optimize({"d": d_loss}, "discriminator")
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
            edge = canny_edges(gray, sigma=self.canny_sigma, mask=mask)
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
