"""Pyramid structure loss of Yang, Qi, Shi (AAAI 2020, "structure knowledge").

Facts from ``specs/structure_knowledge.md`` §6 and the official code (YoungGod/sturcture-inpainting,
``src/inpaint_model.py`` ``build_graph_with_losses``, ``src/loss.py`` ``priority_loss_mask``).
At every decoder scale ``s`` the generator predicts a 6-channel Sobel gradient map; with
``e_s = |grad_pred_s - grad_target_s|`` (whole image, 6 channels):

* edge weight ``P_s``: the binary Canny map (1 = edge) blurred **twice** by OpenCV's 5x5 Gaussian
  with sigma 1 ('SAME' convolution, zero padding); ``w_s = edge_alpha * P_s`` (``edge_alpha`` 20);
* ``edge_l1_s = sum(w_s * e_s) / sum(w_s) / 6`` over the whole batch (a ``w``-weighted mean of
  the per-pixel error averaged over the 6 channels; note that ``edge_alpha`` cancels in this
  ratio, exactly as in the official code);
* ``grad_l1_s = mean(grad_alpha * e_s)`` (``grad_alpha`` 0.1);
* ``structure_s = alpha * (edge_l1_s + grad_l1_s)`` (``alpha`` 1) and the loss is the sum over
  the scales.

One guard the official code lacks: a batch without any Canny edge at a scale makes
``sum(w_s) = 0`` (0/0 = NaN in TensorFlow); here the denominator is clamped to ``eps`` so that
``edge_l1_s`` is 0 then.

Plain ``torch``; no dependency on the rest of inpaintzoo.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PyramidStructureLoss", "edge_priority_map", "opencv_gaussian_kernel1d"]


def opencv_gaussian_kernel1d(ksize: int = 5, sigma: float = 1.0) -> torch.Tensor:
    """``cv2.getGaussianKernel(ksize, sigma)`` for ``sigma > 0``: normalised
    ``exp(-(i - (ksize-1)/2)^2 / (2 sigma^2))``, float64, shape ``(ksize,)``."""
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"ksize must be a positive odd integer, got {ksize}")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    x = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def edge_priority_map(
    edge: torch.Tensor, ksize: int = 5, sigma: float = 1.0, iterations: int = 2
) -> torch.Tensor:
    """Blur a ``(B, 1, H, W)`` edge map ``iterations`` times with the 2-D OpenCV Gaussian
    (outer product of :func:`opencv_gaussian_kernel1d`), zero padding ('SAME'). Same shape."""
    if edge.ndim != 4 or edge.shape[1] != 1:
        raise ValueError(f"edge map must have shape (B, 1, H, W), got {tuple(edge.shape)}")
    k1 = opencv_gaussian_kernel1d(ksize, sigma)
    kernel = torch.outer(k1, k1).to(device=edge.device, dtype=edge.dtype)[None, None]
    out = edge
    for _ in range(iterations):
        out = F.conv2d(out, kernel, padding=ksize // 2)
    return out


class PyramidStructureLoss(nn.Module):
    """Multi-scale L1 on gradient maps with extra weight on (blurred) Canny edges.

    Args:
        alpha: weight of every scale's ``edge_l1 + grad_l1`` (official ``ALPHA`` 1).
        edge_alpha: scale of the edge weight map (official ``EDGE_ALPHA`` 20; cancels in the
            weighted mean, kept for fidelity).
        grad_alpha: weight of the plain per-pixel gradient L1 (official ``GRAD_ALPHA`` 0.1).
        blur_ksize, blur_sigma, blur_iterations: the edge blur (5, 1, 2).
        eps: lower bound of ``sum(w)`` (no edges -> ``edge_l1 = 0`` instead of NaN).

    ``forward(pred_grads, target_grads, edges)``: three equally long sequences, one entry per
    scale: predicted and target gradient maps ``(B, C, h, w)`` (C = 6 in the model) and binary
    edge maps ``(B, 1, h, w)`` (1 = edge). Returns a dict of scalars: ``"total"`` and, per scale
    index ``i``, ``"edge_l1_{i}"`` and ``"grad_l1_{i}"`` (unweighted by ``alpha``).

    Example:
        >>> loss = PyramidStructureLoss()
        >>> g = torch.zeros(1, 6, 8, 8)
        >>> float(loss([g], [g], [torch.zeros(1, 1, 8, 8)])["total"])
        0.0
    """

    def __init__(
        self,
        alpha: float = 1.0,
        edge_alpha: float = 20.0,
        grad_alpha: float = 0.1,
        blur_ksize: int = 5,
        blur_sigma: float = 1.0,
        blur_iterations: int = 2,
        eps: float = 1e-8,
    ) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.edge_alpha = float(edge_alpha)
        self.grad_alpha = float(grad_alpha)
        self.blur_ksize = int(blur_ksize)
        self.blur_sigma = float(blur_sigma)
        self.blur_iterations = int(blur_iterations)
        self.eps = float(eps)
        opencv_gaussian_kernel1d(self.blur_ksize, self.blur_sigma)  # validate early

    def edge_weights(self, edge: torch.Tensor) -> torch.Tensor:
        """``edge_alpha * blur^iterations(edge)``, ``(B, 1, h, w)``."""
        blurred = edge_priority_map(edge, self.blur_ksize, self.blur_sigma, self.blur_iterations)
        return self.edge_alpha * blurred

    def scale_terms(
        self, pred: torch.Tensor, target: torch.Tensor, edge: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(edge_l1, grad_l1)`` at one scale (see the module docstring)."""
        if pred.shape != target.shape:
            raise ValueError(
                f"predicted gradient {tuple(pred.shape)} and target {tuple(target.shape)} differ"
            )
        if edge.ndim != 4 or edge.shape[1] != 1 or edge.shape[0] != pred.shape[0]:
            raise ValueError(f"edge map must be (B, 1, h, w), got {tuple(edge.shape)}")
        if edge.shape[-2:] != pred.shape[-2:]:
            raise ValueError(
                f"edge map {tuple(edge.shape)} does not match gradient map {tuple(pred.shape)}"
            )
        error = (pred.float() - target.float()).abs()
        weights = self.edge_weights(edge.float())
        channels = pred.shape[1]
        edge_l1 = (weights * error).sum() / weights.sum().clamp_min(self.eps) / channels
        grad_l1 = (self.grad_alpha * error).mean()
        return edge_l1, grad_l1

    def forward(
        self,
        pred_grads: Sequence[torch.Tensor],
        target_grads: Sequence[torch.Tensor],
        edges: Sequence[torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        if not len(pred_grads) == len(target_grads) == len(edges) or not pred_grads:
            raise ValueError(
                "pred_grads, target_grads and edges need one entry per scale each, got "
                f"{len(pred_grads)}, {len(target_grads)}, {len(edges)}"
            )
        terms: dict[str, torch.Tensor] = {}
        total = pred_grads[0].new_zeros((), dtype=torch.float32)
        for i, (pred, target, edge) in enumerate(zip(pred_grads, target_grads, edges)):
            edge_l1, grad_l1 = self.scale_terms(pred, target, edge)
            terms[f"edge_l1_{i}"] = edge_l1
            terms[f"grad_l1_{i}"] = grad_l1
            total = total + self.alpha * (edge_l1 + grad_l1)
        terms["total"] = total
        return terms

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, edge_alpha={self.edge_alpha}, grad_alpha={self.grad_alpha}, "
            f"blur=({self.blur_ksize}, sigma={self.blur_sigma}) x {self.blur_iterations}"
        )
