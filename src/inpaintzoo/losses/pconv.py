"""The PConv-family loss: hole/valid L1, VGG perceptual and style, total variation.

Liu et al., "Image Inpainting for Irregular Holes Using Partial Convolutions", ECCV 2018
(Eq. 1-7); reused with other weights by CTSDG (Guo et al. ICCV 2021, ``criteria/loss.py``:
hole 60, valid 10, perceptual 0.1, style 250, no TV), and by LBAM, PRVS, RFR and MEDFE. With
output ``O``, ground truth ``Y``, composite ``C = M O + (1 - M) Y`` (``M`` = 1 in the hole):

* ``hole = mean(|M (O - Y)|)``, ``valid = mean(|(1 - M)(O - Y)|)``: plain means over every
  element (the paper's ``1 / N_Igt`` with ``N_Igt = C H W``);
* ``perceptual = sum_l mean|phi_l(O) - phi_l(Y)| + mean|phi_l(C) - phi_l(Y)|``;
* ``style = sum_l mean|G(phi_l(O)) - G(phi_l(Y))| + mean|G(phi_l(C)) - G(phi_l(Y))|`` with
  ``G(F) = F F^T / (C H W)``;
* ``tv``: total variation of ``C`` over ``P``, the hole dilated by one pixel: the mean absolute
  difference of horizontal neighbours both in ``P`` plus that of vertical ones.

``phi_l`` are the extractor's layers (default VGG16 ``pool1, pool2, pool3``). Images are given in
the range the method's official code uses (CTSDG: ``[-1, 1]``, no ImageNet normalisation; the
extractor's ``normalize_input`` decides the rest). Terms are unweighted float32 scalars; the
method applies its weights. Target features are computed without gradient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.conventions import composite
from inpaintzoo.losses.perceptual import VGGFeatures, gram_matrix

__all__ = ["PCONV_TERMS", "PConvLoss", "hole_valid_l1", "total_variation"]

PCONV_TERMS: tuple[str, ...] = ("hole", "valid", "perceptual", "style", "tv")
DEFAULT_LAYERS: tuple[str, ...] = ("pool1", "pool2", "pool3")


def hole_valid_l1(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean|M (O - Y)|, mean|(1 - M)(O - Y)|)`` over every element (float32 scalars)."""
    diff = output.float() - target.float()
    return (diff * mask).abs().mean(), (diff * (1.0 - mask)).abs().mean()


def total_variation(image: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Mean absolute difference of horizontal neighbours plus that of vertical neighbours.

    With ``region`` (B, 1, H, W) in {0, 1}, only neighbour pairs with both pixels in the region
    count, and each direction is averaged over its counted pairs and channels.

    Example:
        >>> x = torch.zeros(1, 1, 4, 4); x[..., 2:] = 1.0
        >>> round(float(total_variation(x)), 4)  # 4 of 12 horizontal pairs differ by 1
        0.3333
    """
    x = image.float()
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs()
    if region is None:
        return dx.mean() + dy.mean()
    r = region.float()
    rx = (r[..., :, 1:] * r[..., :, :-1]).expand_as(dx)
    ry = (r[..., 1:, :] * r[..., :-1, :]).expand_as(dy)
    return (dx * rx).sum() / rx.sum().clamp_min(1.0) + (dy * ry).sum() / ry.sum().clamp_min(1.0)


class PConvLoss(nn.Module):
    """The unweighted PConv-family terms; see the module docstring.

    Args:
        terms: which terms to compute (a subset of :data:`PCONV_TERMS`); the VGG is only built
            when ``perceptual`` or ``style`` is asked for.
        extractor: the feature extractor (a :class:`~inpaintzoo.losses.VGGFeatures` or any
            module returning ``{layer: features}``); default VGG16 ``pool1..pool3`` with
            ``weights`` and no input normalisation.
        weights: ``"imagenet"`` | ``"random"`` for the default extractor.
        tv_dilation: pixels by which the hole is dilated for the TV region (PConv: 1).

    ``forward(output, target, mask)`` returns ``{term: scalar}`` for the asked terms.
    """

    def __init__(
        self,
        terms: Iterable[str] = PCONV_TERMS,
        extractor: nn.Module | None = None,
        weights: str = "imagenet",
        layers: Sequence[str] = DEFAULT_LAYERS,
        tv_dilation: int = 1,
    ) -> None:
        super().__init__()
        self.terms = tuple(terms)
        unknown = set(self.terms) - set(PCONV_TERMS)
        if unknown:
            raise ValueError(
                f"unknown PConv loss terms {sorted(unknown)}; choose from {PCONV_TERMS}"
            )
        self.tv_dilation = int(tv_dilation)
        needs_vgg = bool({"perceptual", "style"} & set(self.terms))
        if needs_vgg and extractor is None:
            extractor = VGGFeatures("vgg16", layers, weights=weights)
        self.extractor = extractor if needs_vgg else None

    def _vgg_terms(
        self, output: torch.Tensor, composite: torch.Tensor, target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        f_out: Mapping[str, torch.Tensor] = self.extractor(output)
        f_comp: Mapping[str, torch.Tensor] = self.extractor(composite)
        with torch.no_grad():
            f_gt: Mapping[str, torch.Tensor] = self.extractor(target)
        zero = output.new_zeros((), dtype=torch.float32)
        perceptual, style = zero, zero.clone()
        for name, fg in f_gt.items():
            fo, fc = f_out[name].float(), f_comp[name].float()
            if "perceptual" in self.terms:
                perceptual = perceptual + F.l1_loss(fo, fg.float()) + F.l1_loss(fc, fg.float())
            if "style" in self.terms:
                gram_gt = gram_matrix(fg)
                style = style + F.l1_loss(gram_matrix(fo), gram_gt)
                style = style + F.l1_loss(gram_matrix(fc), gram_gt)
        out = {}
        if "perceptual" in self.terms:
            out["perceptual"] = perceptual
        if "style" in self.terms:
            out["style"] = style
        return out

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        comp = composite(output, target, mask)
        result: dict[str, torch.Tensor] = {}
        if {"hole", "valid"} & set(self.terms):
            hole, valid = hole_valid_l1(output, target, mask)
            if "hole" in self.terms:
                result["hole"] = hole
            if "valid" in self.terms:
                result["valid"] = valid
        if self.extractor is not None:
            result.update(self._vgg_terms(output, comp, target))
        if "tv" in self.terms:
            k = 2 * self.tv_dilation + 1
            region = F.max_pool2d(mask.float(), k, stride=1, padding=self.tv_dilation)
            result["tv"] = total_variation(comp, region)
        return result
