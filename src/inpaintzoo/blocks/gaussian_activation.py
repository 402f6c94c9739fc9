"""LBAM's asymmetric Gaussian attention activation ``g_A`` and its mask-update function ``g_M``.

Xie et al., "Image Inpainting with Learnable Bidirectional Attention Maps", ICCV 2019. Facts from
``specs/lbam.md`` §2 (official Vious/LBAM_Pytorch ``models/ActivationFunction.py``); this is an
independent implementation.

* ``g_A(x)`` with four learnable scalars ``(a, mu, sigma1, sigma2)``::

      g_A(x) = a * exp(-sigma1 * (x - mu)^2)              for x <  mu
      g_A(x) = 1 + (a - 1) * exp(-sigma2 * (x - mu)^2)    for x >= mu

  It peaks at ``a`` for ``x = mu``, falls to 0 on the left (a mask response with no valid pixel
  gives a near-zero attention) and to 1 on the right (fully valid windows keep their features):
  the two sides have different limits and widths (asymmetric). The scalars are kept in
  ``a in [1.01, 6]``, ``mu in [0.1, 3]``, ``sigma1, sigma2 in [0.5, 2]``. The official layer
  clamps its parameters in place (``.data``) at the start of every forward; here ``forward``
  uses the clamped values (same outputs for any stored value, gradients flow at the bounds)
  and :meth:`AsymmetricGaussian.project_` clamps the stored values in place (called after each
  optimiser step by the LBAM method, so the parameters never drift outside).
* ``g_M(x) = ReLU(x) ** alpha`` with a fixed ``alpha = 0.8`` (the official learnable ``alpha`` is
  commented out). Its derivative is infinite at ``0+``; the ReLU's backward zeroes it at
  ``x <= 0``, so gradients stay finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GAUSSIAN_BOUNDS", "AsymmetricGaussian", "MaskUpdate", "mask_update"]

#: ``{parameter: (low, high)}``: the official clamp ranges of ``g_A``'s scalars.
GAUSSIAN_BOUNDS: dict[str, tuple[float, float]] = {
    "a": (1.01, 6.0),
    "mu": (0.1, 3.0),
    "sigma1": (0.5, 2.0),
    "sigma2": (0.5, 2.0),
}


class AsymmetricGaussian(nn.Module):
    """The asymmetric Gaussian activation ``g_A`` (see the module docstring).

    Args:
        a, mu, sigma1, sigma2: initial values (LBAM forward layers: 1.1, 2.0, 1.0, 1.0; reverse
            layers: 1.1, 1.0, 0.5, 0.5).

    Shape:
        any ``(*)`` -> the same shape. Four scalar parameters ``a``, ``mu``, ``sigma1``,
        ``sigma2`` (state-dict keys of the same names, shape ``()``).

    Example:
        >>> g = AsymmetricGaussian(1.1, 2.0, 1.0, 1.0)
        >>> round(g(torch.tensor(2.0)).item(), 4)  # the peak a at x = mu
        1.1
    """

    def __init__(
        self, a: float = 1.1, mu: float = 2.0, sigma1: float = 1.0, sigma2: float = 1.0
    ) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(float(a)))
        self.mu = nn.Parameter(torch.tensor(float(mu)))
        self.sigma1 = nn.Parameter(torch.tensor(float(sigma1)))
        self.sigma2 = nn.Parameter(torch.tensor(float(sigma2)))

    def clamped(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(a, mu, sigma1, sigma2)`` clamped to :data:`GAUSSIAN_BOUNDS` (differentiable)."""
        return tuple(  # type: ignore[return-value]
            getattr(self, name).clamp(low, high) for name, (low, high) in GAUSSIAN_BOUNDS.items()
        )

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp the stored parameters to :data:`GAUSSIAN_BOUNDS` in place."""
        for name, (low, high) in GAUSSIAN_BOUNDS.items():
            getattr(self, name).clamp_(low, high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, mu, sigma1, sigma2 = self.clamped()
        squared = (x - mu) ** 2
        left = a * torch.exp(-sigma1 * squared)
        right = 1.0 + (a - 1.0) * torch.exp(-sigma2 * squared)
        return torch.where(x < mu, left, right)

    def extra_repr(self) -> str:
        if self.a.is_meta:
            return ""
        return ", ".join(f"{n}={getattr(self, n).detach().item():.3g}" for n in GAUSSIAN_BOUNDS)


def mask_update(x: torch.Tensor, alpha: float = 0.8) -> torch.Tensor:
    """``g_M(x) = ReLU(x) ** alpha`` (LBAM's updated soft mask), same shape as ``x``.

    Example:
        >>> mask_update(torch.tensor([-3.0, 0.0, 1.0, 32.0]))
        tensor([ 0.,  0.,  1., 16.])
    """
    return F.relu(x).pow(alpha)


class MaskUpdate(nn.Module):
    """Module form of :func:`mask_update` (no parameters: ``alpha`` is fixed)."""

    def __init__(self, alpha: float = 0.8) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mask_update(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}"
