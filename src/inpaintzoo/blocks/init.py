"""Weight initialisation shared by the GAN nets.

:func:`init_weights` follows the ``init_weights(init_type, gain)`` helper of EdgeConnect
(knazeri/edge-connect ``src/networks.py``, itself from pix2pix/CycleGAN): conv, transposed-conv
and linear weights from the chosen scheme, biases zero, batch-norm weights N(1, gain) and biases
zero. Spectrally normalised layers have their unnormalised ``original`` weight initialised, and
their power-iteration vectors re-estimated so that the first forward already divides by a
good estimate of the largest singular value.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["init_weights"]

InitKind = Literal["normal", "xavier", "kaiming", "orthogonal"]

_WEIGHTED = (nn.modules.conv._ConvNd, nn.Linear)
_BATCH_NORMS = (nn.modules.batchnorm._BatchNorm,)

# Power iterations run after re-initialising an SN weight; torch runs 15 when SN is registered.
_SN_WARMUP_ITERS = 15


def _raw_weight(module: nn.Module) -> torch.Tensor:
    """The tensor that holds the learnable weight (the SN ``original`` when parametrized)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original  # type: ignore[union-attr]
    return module.weight  # type: ignore[return-value]


@torch.no_grad()
def _refresh_spectral_norm(module: nn.Module) -> None:
    if not parametrize.is_parametrized(module, "weight"):
        return
    original = module.parametrizations.weight.original  # type: ignore[union-attr]
    for p in module.parametrizations.weight:  # type: ignore[union-attr]
        # ``_SpectralNorm`` is private; guard so a torch refactor degrades to the stale u/v
        # (corrected by power iterations during training) instead of failing.
        if type(p).__name__ == "_SpectralNorm" and hasattr(p, "_power_method"):
            if original.is_meta:
                continue
            p._power_method(p._reshape_weight_to_matrix(original), _SN_WARMUP_ITERS)


@torch.no_grad()
def init_weights(module: nn.Module, kind: InitKind = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every conv/linear (and batch-norm) layer inside ``module``; return it.

    Args:
        module: any module; its submodules are visited with ``module.apply``.
        kind: ``"normal"`` -> weights N(0, gain) (EdgeConnect's default, gain 0.02);
            ``"xavier"`` -> ``xavier_normal_(gain=gain)``; ``"kaiming"`` ->
            ``kaiming_normal_(a=0, mode="fan_in")``; ``"orthogonal"`` -> ``orthogonal_(gain=gain)``.
        gain: standard deviation / gain as above.

    Biases are set to zero. ``InstanceNorm`` without affine has nothing to initialise; affine
    instance norms keep PyTorch's default (weight 1, bias 0).

    Example:
        >>> net = init_weights(nn.Sequential(nn.Conv2d(3, 8, 3)), "normal", 0.02)
    """
    if kind not in ("normal", "xavier", "kaiming", "orthogonal"):
        raise ValueError(
            f"unknown init kind {kind!r}; choose 'normal', 'xavier', 'kaiming' or 'orthogonal'"
        )

    def _init(m: nn.Module) -> None:
        if isinstance(m, _WEIGHTED):
            weight = _raw_weight(m)
            if kind == "normal":
                nn.init.normal_(weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(weight, gain=gain)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
            _refresh_spectral_norm(m)
        elif isinstance(m, _BATCH_NORMS) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    module.apply(_init)
    return module
