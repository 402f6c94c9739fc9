"""Convolution helpers: spectral normalisation and conv factories with an SN switch.

Spectral normalisation (Miyato et al., "Spectral Normalization for Generative Adversarial
Networks", ICLR 2018) uses the *parametrization* API
(:func:`torch.nn.utils.parametrizations.spectral_norm`), which ``torch.compile`` and
``deepcopy`` handle, rather than the legacy forward-pre-hook
(:func:`torch.nn.utils.spectral_norm`) used by the original EdgeConnect code.

Parameter accounting is the same as the legacy version: the unnormalised weight lives in
``module.parametrizations.weight.original`` (a parameter with the weight's numel) and the
power-iteration vectors ``u``/``v`` are buffers, so they are not counted as parameters.
:func:`legacy_spectral_norm_keys_to_parametrization` maps legacy state-dict keys
(``weight_orig``, ``weight_u``, ``weight_v``) onto the parametrization's keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _parametrized_spectral_norm

__all__ = [
    "conv2d",
    "conv_transpose2d",
    "has_spectral_norm",
    "legacy_spectral_norm_keys_to_parametrization",
    "spectral_norm",
]

ModuleT = TypeVar("ModuleT", bound=nn.Module)

_IntPair = int | tuple[int, int]


def spectral_norm(module: ModuleT, enabled: bool = True, name: str = "weight") -> ModuleT:
    """Apply spectral normalisation to ``module.<name>`` when ``enabled``; return the module.

    Uses :func:`torch.nn.utils.parametrizations.spectral_norm` with its defaults: one
    power iteration per training forward, ``eps=1e-12``, and ``dim=1`` for transposed
    convolutions (their output channels are dim 1), ``dim=0`` otherwise.

    Args:
        module: a module with a ``weight`` parameter (``nn.Conv2d``, ``nn.ConvTranspose2d``,
            ``nn.Linear``, ...).
        enabled: apply SN when True; return ``module`` untouched when False (so a builder can
            pass a flag straight through).
        name: the parameter to normalise.

    Example:
        >>> conv = spectral_norm(nn.Conv2d(3, 8, 3))
        >>> hasattr(conv, "parametrizations")
        True
    """
    if not enabled:
        return module
    return _parametrized_spectral_norm(module, name=name)


def has_spectral_norm(module: nn.Module, name: str = "weight") -> bool:
    """True when ``module.<name>`` is spectrally normalised (parametrization API)."""
    if not parametrize.is_parametrized(module, name):
        return False
    return any(
        type(p).__name__ == "_SpectralNorm"
        for p in module.parametrizations[name]  # type: ignore[index]
    )


def conv2d(
    in_ch: int,
    out_ch: int,
    kernel_size: _IntPair,
    stride: _IntPair = 1,
    padding: _IntPair = 0,
    dilation: _IntPair = 1,
    bias: bool = True,
    use_spectral_norm: bool = False,
) -> nn.Module:
    """``nn.Conv2d`` (zero padding), optionally spectrally normalised.

    Shapes: ``(B, in_ch, H, W) -> (B, out_ch, H', W')`` with the usual conv arithmetic,
    ``H' = floor((H + 2p - d(k - 1) - 1) / s) + 1``.
    """
    conv = nn.Conv2d(
        in_ch,
        out_ch,
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        bias=bias,
    )
    return spectral_norm(conv, enabled=use_spectral_norm)


def conv_transpose2d(
    in_ch: int,
    out_ch: int,
    kernel_size: _IntPair,
    stride: _IntPair = 1,
    padding: _IntPair = 0,
    output_padding: _IntPair = 0,
    dilation: _IntPair = 1,
    bias: bool = True,
    use_spectral_norm: bool = False,
) -> nn.Module:
    """``nn.ConvTranspose2d``, optionally spectrally normalised (over output channels, dim 1).

    Shapes: ``(B, in_ch, H, W) -> (B, out_ch, H', W')`` with
    ``H' = (H - 1)s - 2p + d(k - 1) + output_padding + 1``; e.g. k4 s2 p1 doubles H and W.
    """
    conv = nn.ConvTranspose2d(
        in_ch,
        out_ch,
        kernel_size,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        bias=bias,
    )
    return spectral_norm(conv, enabled=use_spectral_norm)


def legacy_spectral_norm_keys_to_parametrization(
    state_dict: Mapping[str, torch.Tensor], name: str = "weight"
) -> dict[str, torch.Tensor]:
    """Rename legacy-SN state-dict keys to those of the parametrization API.

    ``<prefix>.weight_orig -> <prefix>.parametrizations.weight.original``,
    ``<prefix>.weight_u -> <prefix>.parametrizations.weight.0._u``,
    ``<prefix>.weight_v -> <prefix>.parametrizations.weight.0._v``. Other keys pass through.
    Useful for loading checkpoints written with :func:`torch.nn.utils.spectral_norm`
    (e.g. the released EdgeConnect weights).
    """
    suffixes = {
        f"{name}_orig": f"parametrizations.{name}.original",
        f"{name}_u": f"parametrizations.{name}.0._u",
        f"{name}_v": f"parametrizations.{name}.0._v",
    }
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        prefix, _, last = key.rpartition(".")
        if last in suffixes:
            key = f"{prefix}.{suffixes[last]}" if prefix else suffixes[last]
        out[key] = value
    return out
