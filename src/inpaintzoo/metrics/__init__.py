"""Evaluation metrics: per-image PSNR/SSIM/L1 (torchmetrics definitions, named variants), LPIPS
and FID when their backbone weights are in the torch hub cache (availability checks that never
touch the network), 95 % confidence intervals, and accumulation binned by hole ratio
(:class:`BinnedMetrics`, which the evaluation runner summarises with).

No Lightning/Hydra import here. LPIPS and FID import their packages lazily (when constructed).
"""

from inpaintzoo.metrics.binned import BinnedMetrics, summarize
from inpaintzoo.metrics.fid import (
    FID_WEIGHTS_URL,
    FIDFeatures,
    fid_availability,
    fid_from_features,
)
from inpaintzoo.metrics.functional import (
    METRIC_VARIANTS,
    VARIANT_ALIASES,
    hole_ratio,
    l1_percent,
    mean_ci95,
    per_image_metrics,
    psnr,
    psnr_batch,
    resolve_variant,
    ssim,
)
from inpaintzoo.metrics.lpips import (
    LPIPS_NETS,
    LPIPSMetric,
    lpips_availability,
    lpips_backbone_path,
)

__all__ = [
    "FID_WEIGHTS_URL",
    "FIDFeatures",
    "LPIPS_NETS",
    "METRIC_VARIANTS",
    "VARIANT_ALIASES",
    "BinnedMetrics",
    "LPIPSMetric",
    "fid_availability",
    "fid_from_features",
    "hole_ratio",
    "l1_percent",
    "lpips_availability",
    "lpips_backbone_path",
    "mean_ci95",
    "per_image_metrics",
    "psnr",
    "psnr_batch",
    "resolve_variant",
    "ssim",
    "summarize",
]
