"""DeepFill v2 networks: the gated-convolution coarse-to-fine generator with contextual attention
and the SN-PatchGAN discriminator, with or without the sketch channel.

Yu, Lin, Yang, Shen, Lu, Huang. "Free-Form Image Inpainting with Gated Convolution", ICCV 2019
(arXiv:1806.03589). Official code: JiahuiYu/generative_inpainting, branch master (TensorFlow:
``inpaint_model.py`` ``build_inpaint_net`` / ``build_sn_patch_gan_discriminator``,
``inpaint_ops.py`` ``gen_conv`` / ``dis_conv``). Facts from ``specs/deepfill_v2.md`` §2-§5; an
independent implementation (no official code copied, no official weights: the release is
TensorFlow).

Generator (full variant, ``c = 48``): DeepFill v1's layer plan
(:class:`~inpaintzoo.nets.deepfill_v1.CoarseToFineGenerator`) with every ``gen_conv`` a **gated
convolution**: one conv with ``c_k`` outputs split in halves, ``ELU(features) * sigmoid(gates)``
(ReLU for ``pmconv6``), so each layer passes on ``c_k / 2`` channels; the output layers
(``conv17``, ``allconv17``, 3 outputs) are plain convs; both stage outputs go through tanh.
Stage 1 input ``cat(x_in [, sketch * mask], ones, mask)`` = 5 (6) channels; stage 2 input the
3-channel composite ``x1 * mask + x_in * (1 - mask)`` (no ones/mask, unlike v1)::

    coarse  conv1 k5 5->48=>24 | conv2_downsample s2 24->96=>48 | conv3 48->96=>48 |
            conv4_downsample s2 48->192=>96 | conv5, conv6, conv7..10_atrous (2,4,8,16),
            conv11, conv12 96->192=>96 | conv13_upsample 96->96=>48 | conv14 48->96=>48 |
            conv15_upsample 48->48=>24 | conv16 24->24=>12 | conv17 12->3, tanh
    refine  xconv1..10 (3->48=>24 ... 96->192=>96) | pmconv1..6 (-> 96, ReLU) + contextual
            attention + pmconv9, pmconv10 | allconv11 192->192=>96 ... allconv17 12->3, tanh

Discriminator: :class:`~inpaintzoo.blocks.DeepFillSNPatchGAN` on ``cat(image, mask [, sketch])``
(4 or 5 channels, images in ``[-1, 1]``), six spectral-normalised k5 s2 convs 64-128-256-256-256-256
with LeakyReLU 0.2 after each, every element of the 256 x H/64 x W/64 output a hinge logit.

Conventions: the generator takes ``[0, 1]`` images and inpaintzoo's hole mask (1 = hole),
works in ``[-1, 1]`` inside and returns ``(coarse, output)`` in ``[0, 1]``; the discriminator
takes what the method gives it (``[-1, 1]`` images, mask, sketch). H, W multiples of 4
(``size_multiple`` 8 as the official ``test.py``).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from inpaintzoo.blocks.deepfill_discriminators import DeepFillSNPatchGAN
from inpaintzoo.nets.deepfill_v1 import SIZE_MULTIPLE, CoarseToFineGenerator

__all__ = [
    "DEEPFILL_V2_VARIANTS",
    "OFFICIAL_PARAM_COUNTS",
    "OFFICIAL_PARAM_COUNTS_SKETCH",
    "SIZE_MULTIPLE",
    "build_deepfill_v2_nets",
]

DEEPFILL_V2_VARIANTS: dict[str, dict[str, Any]] = {
    # official: cnum 48, discriminator 64; sketch = the guided model's extra edge channel
    "full": {"cnum": 48, "disc_cnum": 64, "sketch": False},
    # 64 px on CPU: generator 256,908 parameters, discriminator 1,488,608 (a narrower D makes
    # the first batches' GAN dynamics swing the hole PSNR by several dB; see the docs)
    "tiny": {"cnum": 12, "disc_cnum": 32, "sketch": False},
}

OFFICIAL_PARAM_COUNTS: dict[str, int] = {
    # specs/deepfill_v2.md §8 [COMPUTED layer by layer from the master TF code]; the paper's
    # "4.1M" for the generator [PAPER]
    "generator": 4_052_478,
    "discriminator": 5_946_816,
}

#: the same networks with the sketch channel (``sketch: true``; 6-channel G, 5-channel D)
OFFICIAL_PARAM_COUNTS_SKETCH: dict[str, int] = {
    "generator": 4_053_678,
    "discriminator": 5_948_416,
}


def build_deepfill_v2_nets(variant: str = "full", **overrides: Any) -> dict[str, nn.Module]:
    """Build ``{"generator", "discriminator"}`` for a named variant.

    Args:
        variant: ``"full"`` (official widths and parameter counts) or ``"tiny"``.
        **overrides: ``cnum`` (multiple of 4), ``disc_cnum``, ``sketch`` (the extra sketch input
            channel of the generator and the discriminator) replace the variant's values.
    """
    if variant not in DEEPFILL_V2_VARIANTS:
        raise ValueError(
            f"unknown DeepFill v2 variant {variant!r}; choose one of {sorted(DEEPFILL_V2_VARIANTS)}"
        )
    unknown = sorted(set(overrides) - set(DEEPFILL_V2_VARIANTS[variant]))
    if unknown:
        raise ValueError(
            f"unknown DeepFill v2 override(s) {unknown}; allowed: "
            f"{sorted(DEEPFILL_V2_VARIANTS[variant])}"
        )
    cfg = {**DEEPFILL_V2_VARIANTS[variant], **overrides}
    sketch = int(bool(cfg["sketch"]))
    return {
        "generator": CoarseToFineGenerator(
            int(cfg["cnum"]),
            gated=True,
            guide_channels=sketch,
            refine_with_mask=False,
            output="tanh",
        ),
        "discriminator": DeepFillSNPatchGAN(4 + sketch, base_channels=int(cfg["disc_cnum"])),
    }
