"""DeepFill v1 (Yu et al., CVPR 2018) as a LightningModule.

"Generative Image Inpainting with Contextual Attention": a coarse network, then a refinement
network whose attention branch copies features from the known region into the hole
(:class:`~inpaintzoo.blocks.ContextualAttention`), trained with a spatially discounted L1 and
WGAN-GP critics on the whole image and on the patch around the hole. Facts from
``../shared/specs/deepfill_v1.md`` (official JiahuiYu/generative_inpainting branch v1.0.0,
``inpaint_model.py``, ``inpaint.yml``, ``train.py``; neuralgym ``gan_ops.py``):

* G loss = ``GAN_LOSS_ALPHA`` 0.001 x adversarial + ``L1_LOSS_ALPHA`` 1.2 x l1 +
  ``AE_LOSS_ALPHA`` 1.2 x ae, all on ``[-1, 1]`` images:
  l1 = ``COARSE_L1_ALPHA`` 1.2 x mean(|y - x1| W) + mean(|y - x2| W) on the local patch with the
  spatial discounting map W (``discount_gamma``); ae = (1.2 mean(|y - x1| (1 - m)) +
  mean(|y - x2| (1 - m))) / mean(1 - m) on the whole image; adversarial =
  ``GLOBAL_WGAN_LOSS_ALPHA`` 1 x -mean(D_global(c)) - mean(D_local(c_patch)) on the composite c.
* Critics: D = mean(D(fake)) - mean(D(real)) + 10 x gradient penalty with the gradient norm over
  the hole pixels only (local: the patch's mask, global: the mask), per critic; **5 critic steps
  per generator step** (``SecondaryTrainer(pstep=1, max_iters=5)``), critics first.
* Adam lr 1e-4, betas (0.5, 0.9) for G and both critics.
* Local patch: ``train_size / 2`` (128 at 256 px), here centred on each sample's hole bounding
  box (the official crops the training box's 128 x 128 bbox).

Deviations (docs/methods/deepfill_v1.md): the critic steps reuse the batch (the official
trainer draws 5 fresh batches for them: a batch here is one generator step, as the official
``MAX_ITERS`` counts generator steps); one mask per sample (official: one box per batch);
``discount_gamma`` 0.99 is the paper's value (the release ships 0.9).
"""

from __future__ import annotations

from typing import Any

import torch

from inpaintzoo.blocks.context_discriminator import crop_around_holes
from inpaintzoo.conventions import to_signed
from inpaintzoo.losses.spatial_discount import spatial_discounting_mask, spatially_discounted_l1
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, register_method
from inpaintzoo.nets.deepfill_v1 import (
    DEEPFILL_V1_VARIANTS,
    OFFICIAL_PARAM_COUNTS,
    SIZE_MULTIPLE,
    build_deepfill_v1_nets,
)

_CRITICS = ("local_critic", "global_critic")


@register_method
class DeepFillV1(InpaintingModule):
    """DeepFill v1: coarse-to-fine generator with contextual attention, local + global WGAN-GP
    critics.

    Args (beyond :class:`InpaintingModule`'s and the contract's options):
        discount_gamma: the spatial discounting factor (paper 0.99, default; the v1.0.0 release
            config 0.9). Per pixel at the recipe's 256 px.
        coarse_l1_alpha: weight of the coarse output inside the l1 and ae terms
            (``COARSE_L1_ALPHA`` 1.2).
        global_wgan_alpha: weight of the global critic in the generator's adversarial term
            (``GLOBAL_WGAN_LOSS_ALPHA`` 1).
        critic_steps: critic updates per generator update (5).
        gp_weight: the gradient penalty's weight (``WGAN_GP_LAMBDA`` 10).
    """

    contract = MethodContract(
        name="deepfill_v1",
        paper="Yu, Lin, Yang, Shen, Lu, Huang, Generative Image Inpainting with Contextual "
        "Attention, CVPR 2018",
        official_repo="JiahuiYu/generative_inpainting",
        build_nets=build_deepfill_v1_nets,
        variants=DEEPFILL_V1_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=("generator",),
        size_multiple=SIZE_MULTIPLE,
        min_size=32,
        losses={"l1": 1.2, "ae": 1.2, "adversarial": 0.001},
        lr=1e-4,
        betas=(0.5, 0.9),
        gan_loss="wgan_gp",
        value_range="[-1,1]",
        notes=(
            "critic steps reuse the batch (official: 5 fresh batches per generator step)",
            "local critic patch centred on each sample's hole (official: one box per batch)",
        ),
        # recipe lr 1e-4, embedded_batch(4, 64, seed 3), tiny: hole PSNR +1.1/+1.7/+2.0/+2.3/
        # +2.5/+2.6 dB after 10/20/30/40/50/60 batches (5 critic steps each; 17.4 dB before)
        learning=LearningCheck(batches=60, min_gain_db=2.0),
    )

    def __init__(
        self,
        variant: str = "full",
        *,
        discount_gamma: float = 0.99,
        coarse_l1_alpha: float = 1.2,
        global_wgan_alpha: float = 1.0,
        critic_steps: int = 5,
        gp_weight: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(variant, **options)
        if not 0.0 < float(discount_gamma) <= 1.0:
            raise ValueError(f"discount_gamma must lie in (0, 1], got {discount_gamma}")
        if int(critic_steps) < 1:
            raise ValueError(f"critic_steps must be >= 1, got {critic_steps}")
        self.discount_gamma = float(discount_gamma)
        self.coarse_l1_alpha = float(coarse_l1_alpha)
        self.global_wgan_alpha = float(global_wgan_alpha)
        self.critic_steps = int(critic_steps)
        self.adversarial_loss.gp_weight = float(gp_weight)

    # ------------------------------------------------------------------ sizes
    @property
    def train_size(self) -> int:
        """The image side the critics' dense layers are built for (their input sizes)."""
        return int(self.global_critic.input_size)

    @property
    def patch_size(self) -> int:
        """The local critic's patch side (``train_size / 2``)."""
        return int(self.local_critic.input_size)

    def local_patch(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The ``patch_size`` square of each sample centred on its hole's bounding box (kept
        inside the image; the local critic's input)."""
        return crop_around_holes(x, mask, self.patch_size)

    def check_training_size(self, image: torch.Tensor) -> None:
        h, w = image.shape[-2:]
        if (h, w) != (self.train_size, self.train_size):
            raise ValueError(
                f"deepfill_v1's critics are built for {self.train_size}x{self.train_size} "
                f"training images (their dense layers fix the size), got {h}x{w}: train at "
                f"{self.train_size} px or set model.train_size={h} (a multiple of 32; the "
                "critics' parameter counts then differ from the official ones)"
            )

    # ------------------------------------------------------------------ losses
    def discount_map(self, device: torch.device) -> torch.Tensor:
        """The ``(1, 1, P, P)`` spatial discounting weights of the local patch."""
        p = self.patch_size
        return spatial_discounting_mask(p, p, self.discount_gamma, device=device)

    def reconstruction_terms(
        self,
        image: torch.Tensor,
        mask: torch.Tensor,
        coarse: torch.Tensor,
        output: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Unweighted ``l1`` (discounted, on the local patch around the hole) and ``ae`` (known
        region) terms, computed on ``[-1, 1]`` images as the official code (values twice those
        on ``[0, 1]``)."""
        y, x1, x2 = to_signed(image), to_signed(coarse), to_signed(output)
        alpha = self.coarse_l1_alpha
        y_patch, x1_patch, x2_patch = (self.local_patch(t, mask) for t in (y, x1, x2))
        weights = self.discount_map(image.device)
        l1 = alpha * spatially_discounted_l1(x1_patch, y_patch, weights)
        l1 = l1 + spatially_discounted_l1(x2_patch, y_patch, weights)
        known = 1.0 - mask.float()
        ae = alpha * ((y - x1).abs() * known).mean() + ((y - x2).abs() * known).mean()
        ae = ae / known.mean().clamp_min(1e-6)
        return {"l1": l1, "ae": ae}

    # ------------------------------------------------------------------ training
    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        self.check_training_size(image)
        coarse, output = self.generator(image * (1.0 - mask), mask)
        real = to_signed(image)
        fake = to_signed(output) * mask + real * (1.0 - mask)  # the composite, in [-1, 1]
        real_patch, fake_patch, mask_patch = (self.local_patch(t, mask) for t in (real, fake, mask))
        for _ in range(self.critic_steps):
            d_local, _ = self.discriminator_step(
                "local_critic", real_patch, fake_patch, mask=mask_patch
            )
            d_global, _ = self.discriminator_step("global_critic", real, fake, mask=mask)
        adv_local, _ = self.generator_adversarial("local_critic", fake_patch)
        adv_global, _ = self.generator_adversarial("global_critic", fake)
        terms = self.reconstruction_terms(image, mask, coarse, output)
        terms["adversarial"] = self.global_wgan_alpha * adv_global + adv_local
        g_loss = sum(self.weights[k] * v for k, v in terms.items())
        self.optimize({"g": g_loss}, "generator", terms)
        logs = {k: v.detach() for k, v in terms.items()}
        logs.update(g=g_loss.detach(), d_local=d_local.detach(), d_global=d_global.detach())
        return logs

    # ------------------------------------------------------------------ inference
    def inpaint_raw(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        """``image`` arrives with the hole zeroed (see ``inpaint``); returns the refined
        ``output`` and the stage-1 ``coarse`` result, both raw in ``[0, 1]``."""
        coarse, output = self.generator(image, mask)
        return {"output": output, "coarse": coarse}

    def extra_sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        mask = batch["mask"]
        return {"coarse": out["coarse"] * mask + batch["image"] * (1 - mask)}
