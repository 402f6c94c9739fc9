"""Per-image PSNR / SSIM / L1 and confidence intervals. Inputs ``(B, C, H, W)`` in ``[0, 1]``.

The per-image functions (:func:`psnr`, :func:`ssim`, :func:`l1_percent`, :func:`hole_ratio`)
return a ``(B,)`` float32 tensor, one value per image (computed in float64 where the device
supports it); :func:`psnr_batch` returns one scalar per batch and :func:`mean_ci95` a
``(mean, half_width, n)`` tuple. Named definitions (``variant``):

``"torchmetrics"`` (default; the leaderboard's standard)
    ``torchmetrics.functional.image`` defaults applied per image: PSNR with ``data_range`` 1
    from the mean squared error over C, H, W; SSIM with an 11x11 Gaussian window (sigma 1.5,
    scikit-image's ``truncate=3.5`` support), ``K1 = 0.01``, ``K2 = 0.03`` for data range 1, on
    all RGB channels, averaged over channels and **all** pixels: torchmetrics (1.9) reflect-pads
    the image by 5 pixels and keeps the border values in the mean.

``"skimage"``
    The same Gaussian SSIM with the 5-pixel border cropped before averaging, which is exactly
    scikit-image's ``structural_similarity(data_range=1, channel_axis=..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False)`` (|diff| < 1e-4 in tests/test_metrics.py; the
    torchmetrics value differs from it by up to ~7e-3 at 64 px through the border pixels). PSNR as
    the default (equals ``peak_signal_noise_ratio(data_range=1)``).

``"lbam"`` (alias ``"ctsdg"``): the evaluation code of LBAM (Vious/LBAM_Pytorch
``test_random_batch.py`` + its ``pytorch_ssim``), which CTSDG's authors say they reused
(see ../shared/specs/lbam.md section 5, ctsdg.md section 8)
    SSIM: images multiplied by 255, 11x11 Gaussian window (sigma 1.5, normalised), applied per
    RGB channel with **zero padding** of 5 (borders included), ``C1 = 0.01^2``, ``C2 = 0.03^2``
    (the data-range-1 constants on 0-255 data, i.e. ~6500x too small), mean of the SSIM map
    over channels and pixels. The original ran in float32, where flat regions are noisy because
    the constants are tiny; here it is float64, the value of the definition.
    PSNR: ``10 log10(1 / MSE)`` on the [0, 1] floats, as the per-image default. The original
    reports the mean over *batches* of the PSNR of the whole batch's MSE: that is
    :func:`psnr_batch`, which the caller applies per batch (batch 16 in LBAM).
    Numbers of this variant are not comparable with the default ones.

:func:`l1_percent`: mean absolute error over pixels and channels times 100 (% of the range).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F

__all__ = [
    "METRIC_VARIANTS",
    "VARIANT_ALIASES",
    "hole_ratio",
    "l1_percent",
    "mean_ci95",
    "per_image_metrics",
    "psnr",
    "psnr_batch",
    "resolve_variant",
    "ssim",
]

METRIC_VARIANTS: tuple[str, ...] = ("torchmetrics", "skimage", "lbam")
VARIANT_ALIASES: dict[str, str] = {"ctsdg": "lbam"}


def resolve_variant(variant: str) -> str:
    """Canonical variant name (``"ctsdg" -> "lbam"``); ValueError for unknown names."""
    name = VARIANT_ALIASES.get(variant, variant)
    if name not in METRIC_VARIANTS:
        known = ", ".join([*METRIC_VARIANTS, *VARIANT_ALIASES])
        raise ValueError(f"unknown metric variant {variant!r}; choose one of: {known}")
    return name


def _prepare(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) images, got {tuple(pred.shape)}")
    dtype = torch.float32 if pred.device.type == "mps" else torch.float64
    return pred.detach().to(dtype), target.detach().to(dtype)


def psnr(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    variant: str = "torchmetrics",
) -> torch.Tensor:
    """Per-image PSNR in dB, ``(B,)``: ``10 log10(data_range^2 / MSE_image)``.

    Identical images give ``inf`` (as scikit-image). All variants share this per-image
    definition; see :func:`psnr_batch` for LBAM's per-batch aggregate.
    """
    resolve_variant(variant)
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = _prepare(pred, target)
    values = peak_signal_noise_ratio(p, t, data_range=data_range, reduction="none", dim=(1, 2, 3))
    return values.reshape(-1).float()


def psnr_batch(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """LBAM's per-batch PSNR (scalar): ``10 log10(data_range^2 / MSE)`` with the MSE over the
    whole batch (images, channels, pixels). Average it over batches to reproduce LBAM's number."""
    p, t = _prepare(pred, target)
    mse = (p - t).pow(2).mean()
    return (10.0 * torch.log10(data_range**2 / mse)).float()


def _gaussian_1d(size: int, sigma: float, dtype: torch.dtype, device) -> torch.Tensor:
    coords = torch.arange(size, dtype=dtype, device=device) - size // 2
    g = torch.exp(-(coords**2) / (2.0 * sigma**2))
    return g / g.sum()


def _blur_separable(x: torch.Tensor, g: torch.Tensor, zero_pad: int) -> torch.Tensor:
    """Filter every channel of ``x`` (N, C, H, W) with the 2-D Gaussian ``outer(g, g)`` as two
    1-D passes (the same sums as the 2-D window, 2 x 11 instead of 121 products per pixel).
    ``zero_pad``: zero padding on each side (0: valid filtering of an already padded input)."""
    n, c, h, w = x.shape
    k = g.numel()
    flat = x.reshape(n * c, 1, h, w)
    flat = F.conv2d(flat, g.view(1, 1, 1, k), padding=(0, zero_pad))
    flat = F.conv2d(flat, g.view(1, 1, k, 1), padding=(zero_pad, 0))
    return flat.reshape(n, c, flat.shape[-2], flat.shape[-1])


def _ssim_map(
    p: torch.Tensor, t: torch.Tensor, *, lbam: bool, window_size: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """The SSIM map, ``(B, C, H, W)``.

    ``lbam=False`` is torchmetrics' computation (reflect padding by the window radius, valid
    filtering, variances clamped at 0, data range 1); ``lbam=True`` is LBAM's ``pytorch_ssim`` on
    255-scaled images (zero padding, no clamp, the data-range-1 constants)."""
    g = _gaussian_1d(window_size, sigma, p.dtype, p.device)
    pad = window_size // 2
    if lbam:
        p, t = p * 255.0, t * 255.0
    else:
        p = F.pad(p, (pad, pad, pad, pad), mode="reflect")
        t = F.pad(t, (pad, pad, pad, pad), mode="reflect")
    b = p.shape[0]
    stacked = torch.cat((p, t, p * p, t * t, p * t))
    mu1, mu2, e11, e22, e12 = _blur_separable(stacked, g, pad if lbam else 0).split(b)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq, sigma2_sq, sigma12 = e11 - mu1_sq, e22 - mu2_sq, e12 - mu12
    if not lbam:
        sigma1_sq, sigma2_sq = sigma1_sq.clamp(min=0.0), sigma2_sq.clamp(min=0.0)
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mu12 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )


def ssim(pred: torch.Tensor, target: torch.Tensor, variant: str = "torchmetrics") -> torch.Tensor:
    """Per-image SSIM, ``(B,)``; definitions in the module docstring (data range 1).

    Computed with separable Gaussian filtering (two 1-D passes; ~5x faster on a CPU than the
    2-D window, the same value to ~1e-12: tests/test_metrics.py compares with torchmetrics,
    scikit-image and an independent LBAM reference)."""
    name = resolve_variant(variant)
    p, t = _prepare(pred, target)
    if p.shape[1] < 1 or min(p.shape[-2:]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {tuple(p.shape)}")
    full = _ssim_map(p, t, lbam=name == "lbam")
    if name == "skimage":
        pad = 5  # (11 - 1) // 2, the window radius for sigma 1.5
        full = full[..., pad:-pad, pad:-pad]
    return full.mean(dim=(1, 2, 3)).float()


def l1_percent(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image mean ``|pred - target|`` over pixels and channels, times 100, ``(B,)``."""
    p, t = _prepare(pred, target)
    return ((p - t).abs().mean(dim=(1, 2, 3)) * 100.0).float()


def per_image_metrics(
    pred: torch.Tensor, target: torch.Tensor, variant: str = "torchmetrics"
) -> dict[str, torch.Tensor]:
    """``{"psnr", "ssim", "l1"}`` -> ``(B,)`` tensors (metrics keys of docs/CONTRACTS.md)."""
    return {
        "psnr": psnr(pred, target, variant=variant),
        "ssim": ssim(pred, target, variant=variant),
        "l1": l1_percent(pred, target),
    }


def hole_ratio(mask: torch.Tensor) -> torch.Tensor:
    """Per-image hole fraction of a ``(B, 1, H, W)`` mask (1 = hole), ``(B,)`` float32."""
    return (mask.detach() > 0.5).float().mean(dim=tuple(range(1, mask.ndim)))


def mean_ci95(values: torch.Tensor | Iterable[float]) -> tuple[float, float, int]:
    """``(mean, half_width, n)`` of a 95 % confidence interval for the mean.

    ``half_width = t_{0.975, n-1} * s / sqrt(n)`` with the sample standard deviation ``s``
    (ddof 1) and Student's t quantile (scipy), which is wider than ``1.96 s / sqrt(n)`` for small
    ``n`` (t = 12.71 at n = 2, 2.07 at n = 24, 1.98 at n = 120). ``n = 1``: half width ``nan``
    (undefined); ``n = 0``: ``(nan, nan, 0)``. Values are used as given (an ``inf`` PSNR makes
    the mean ``inf``).
    """
    data = torch.as_tensor(
        values.detach().cpu() if isinstance(values, torch.Tensor) else list(values),
        dtype=torch.float64,
    ).reshape(-1)
    n = int(data.numel())
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(data.mean())
    if n == 1:
        return mean, math.nan, 1
    from scipy.stats import t as student_t

    sem = float(data.std(unbiased=True)) / math.sqrt(n)
    return mean, float(student_t.ppf(0.975, n - 1)) * sem, n
