"""Global + local context discriminators with fully connected heads (GLCIC), and per-sample
patch crops around holes.

Iizuka, Simo-Serra, Ishikawa, "Globally and Locally Consistent Image Completion", SIGGRAPH 2017,
discriminator table (facts via ``../shared/specs/glcic.md`` §2; layer shapes also in the unofficial
otenim/GLCIC-PyTorch ``models.py``). Independent implementation.

* :class:`ContextDiscriminatorBranch`: ``n`` x (conv 5x5 stride 2 -> BatchNorm -> ReLU), then a
  fully connected layer to ``fc_features`` (1024 in the paper) + ReLU. The global branch sees the
  whole image (256 px, 6 convs), the local branch a patch around the completed region (128 px,
  5 convs); both end at 4 x 4 x 512 before the FC.
* :class:`ContextDiscriminator`: the two branches, their feature vectors concatenated
  ``[local, global]`` and one FC to a single **logit** (the paper's sigmoid is applied by the
  BCE-with-logits loss, :class:`~inpaintzoo.losses.AdversarialLoss` ``nsgan``).
* :func:`hole_bounding_boxes`, :func:`crop_around_holes`, :func:`random_crops`: per-sample crops
  as one batched indexing operation (no Python loop over the batch; gradients flow to the image).
  A hole's patch is centred on the centre of the hole's bounding box and shifted to stay inside
  the image (glcic.md §8.4); a sample without a hole gets the centre patch.

No Lightning/Hydra; importable alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from inpaintzoo.blocks.layers import ConvNormAct

__all__ = [
    "ContextDiscriminator",
    "ContextDiscriminatorBranch",
    "crop_around_holes",
    "crop_at",
    "hole_bounding_boxes",
    "random_crops",
]

_Size = int | tuple[int, int]


def _pair(size: _Size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


# ----------------------------------------------------------------------------- crops
def hole_bounding_boxes(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounding box of the hole (``mask > 0``) of each sample.

    Args:
        mask: ``(B, 1, H, W)``, 1 = hole.

    Returns:
        ``(boxes, has_hole)``: ``boxes`` ``(B, 4)`` long ``[top, left, bottom, right]``
        (inclusive; the whole image for a sample without a hole) and ``has_hole`` ``(B,)`` bool.

    Example:
        >>> m = torch.zeros(1, 1, 8, 8); m[..., 2:5, 3:7] = 1
        >>> hole_bounding_boxes(m)[0].tolist()
        [[2, 3, 4, 6]]
    """
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (B, 1, H, W), got {tuple(mask.shape)}")
    hole = mask[:, 0] > 0
    rows, cols = hole.any(dim=2), hole.any(dim=1)  # (B, H), (B, W)
    h, w = hole.shape[-2:]

    def first_last(line: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        as_int = line.to(torch.int8)
        first = as_int.argmax(dim=1)  # first True (0 when none)
        last = length - 1 - as_int.flip(1).argmax(dim=1)
        return first, last

    top, bottom = first_last(rows, h)
    left, right = first_last(cols, w)
    has_hole = rows.any(dim=1)
    boxes = torch.stack([top, left, bottom, right], dim=1)
    whole = torch.tensor([0, 0, h - 1, w - 1], device=mask.device)
    return torch.where(has_hole[:, None], boxes, whole), has_hole


def crop_at(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: _Size):
    """``(B, C, H, W)`` -> ``(B, C, ph, pw)``: the patch of each sample at its own ``top`` and
    ``left`` (``(B,)`` long, patch inside the image), one indexing operation."""
    ph, pw = _pair(size)
    b = images.shape[0]
    rows = top.view(b, 1) + torch.arange(ph, device=images.device)  # (B, ph)
    cols = left.view(b, 1) + torch.arange(pw, device=images.device)  # (B, pw)
    batch = torch.arange(b, device=images.device).view(b, 1, 1)
    # advanced indices separated by a slice: their dims come first -> (B, ph, pw, C)
    patches = images[batch, :, rows[:, :, None], cols[:, None, :]]
    return patches.permute(0, 3, 1, 2)


def _check_patch(images: torch.Tensor, size: _Size) -> tuple[int, int]:
    ph, pw = _pair(size)
    h, w = images.shape[-2:]
    if not (0 < ph <= h and 0 < pw <= w):
        raise ValueError(f"patch {ph}x{pw} does not fit images of {h}x{w}")
    return ph, pw


def crop_around_holes(images: torch.Tensor, mask: torch.Tensor, size: _Size) -> torch.Tensor:
    """The patch of each sample centred on its hole's bounding box, kept inside the image.

    Args:
        images: ``(B, C, H, W)``.
        mask: ``(B, 1, H, W)``, 1 = hole (a sample without a hole gets the centre patch).
        size: patch size ``ph`` or ``(ph, pw)`` (at most ``H x W``). A hole larger than the
            patch: the patch covers the centre of its bounding box.

    Returns:
        ``(B, C, ph, pw)``.

    Example:
        >>> x = torch.arange(64.0).view(1, 1, 8, 8); m = torch.zeros(1, 1, 8, 8)
        >>> m[..., 6:8, 6:8] = 1  # corner hole: the patch is shifted inside the image
        >>> crop_around_holes(x, m, 4)[0, 0, 0].tolist()
        [36.0, 37.0, 38.0, 39.0]
    """
    ph, pw = _check_patch(images, size)
    h, w = images.shape[-2:]
    boxes, _ = hole_bounding_boxes(mask)
    top, left, bottom, right = boxes.unbind(dim=1)
    # centre of [top, bottom] is (top + bottom + 1) / 2; the patch starts ph / 2 above it
    top = torch.div(top + bottom + 1 - ph, 2, rounding_mode="floor").clamp(0, h - ph)
    left = torch.div(left + right + 1 - pw, 2, rounding_mode="floor").clamp(0, w - pw)
    return crop_at(images, top, left, (ph, pw))


def random_crops(
    images: torch.Tensor, size: _Size, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A uniformly random patch of each sample (the paper's random mask ``M_d`` that picks the
    local discriminator's patch of a real image). ``(B, C, H, W) -> (B, C, ph, pw)``."""
    ph, pw = _check_patch(images, size)
    h, w = images.shape[-2:]
    b = images.shape[0]
    top = torch.randint(0, h - ph + 1, (b,), generator=generator, device="cpu")
    left = torch.randint(0, w - pw + 1, (b,), generator=generator, device="cpu")
    return crop_at(images, top.to(images.device), left.to(images.device), (ph, pw))


# ----------------------------------------------------------------------------- networks
class ContextDiscriminatorBranch(nn.Module):
    """One context discriminator: ``len(widths)`` x (conv5x5 s2 p2 -> BN -> ReLU), flatten, FC
    -> ReLU.

    Args:
        in_channels: input channels (3: RGB).
        widths: output channels of the convs (global: 64-128-256-512-512-512, local:
            64-128-256-512-512).
        input_size: the input's ``H`` or ``(H, W)``; fixed, because the FC sees the flattened
            last feature map (``ceil(H / 2**n) x ceil(W / 2**n)`` x ``widths[-1]``).
        fc_features: output features of the FC (1024).

    Shape:
        ``(B, in_channels, H, W) -> (B, fc_features)``, values >= 0.
    """

    def __init__(
        self, in_channels: int, widths: Sequence[int], input_size: _Size, fc_features: int
    ) -> None:
        super().__init__()
        if not widths:
            raise ValueError("a context discriminator needs at least one conv")
        self.input_size = _pair(input_size)
        convs, cin = [], in_channels
        for cout in widths:
            convs.append(ConvNormAct(cin, cout, 5, stride=2, padding=2, norm="batch"))
            cin = cout
        self.convs = nn.Sequential(*convs)
        h, w = self.input_size
        for _ in widths:
            h, w = (h + 1) // 2, (w + 1) // 2
        self.feature_shape = (cin, h, w)
        self.fc = nn.Linear(cin * h * w, fc_features)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(
                f"this context discriminator takes {self.input_size[0]}x{self.input_size[1]} "
                f"inputs (its FC layer is sized for them), got {tuple(x.shape[-2:])}"
            )
        return self.act(self.fc(self.convs(x).flatten(1)))


class ContextDiscriminator(nn.Module):
    """GLCIC's global + local context discriminator.

    Args:
        global_discriminator, local_discriminator: :class:`ContextDiscriminatorBranch` es.

    ``forward(image, patch)``: ``image`` ``(B, 3, Hg, Wg)`` (the whole image at the global
    branch's size) and ``patch`` ``(B, 3, Hl, Wl)`` (the local patch) -> logit ``(B, 1)`` of
    "real": ``head(cat(local(patch), global(image)))``.
    """

    def __init__(
        self,
        global_discriminator: ContextDiscriminatorBranch,
        local_discriminator: ContextDiscriminatorBranch,
    ) -> None:
        super().__init__()
        self.global_discriminator = global_discriminator
        self.local_discriminator = local_discriminator
        features = global_discriminator.fc.out_features + local_discriminator.fc.out_features
        self.head = nn.Linear(features, 1)

    @property
    def global_size(self) -> tuple[int, int]:
        return self.global_discriminator.input_size

    @property
    def local_size(self) -> tuple[int, int]:
        return self.local_discriminator.input_size

    def forward(self, image: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        features = torch.cat(
            [self.local_discriminator(patch), self.global_discriminator(image)], dim=1
        )
        return self.head(features)
