"""FID (Heusel et al., NeurIPS 2017) through torchmetrics / torch-fidelity, offline-safe.

``torchmetrics.image.fid.FrechetInceptionDistance`` uses torch-fidelity's Inception-v3, whose
weights file (``weights-inception-2015-12-05-6726825d.pth``) torch-fidelity downloads into the
torch hub cache at first use. :func:`fid_availability` checks for that file (and the packages)
without touching the network; the evaluation marks FID "n/a" with that reason when it is absent.

FID is a set statistic. The runner caches every sample's 2048-d pool features (so a resumed
evaluation gives the same number) and :func:`fid_from_features` computes the Fréchet distance of
the two feature sets with torchmetrics' own formula (``_compute_fid``), overall and per bin.
"""

from __future__ import annotations

import torch
from torch import nn

from inpaintzoo.losses.perceptual import MissingWeightsError
from inpaintzoo.metrics._hub import missing_hub_file_reason

__all__ = ["FID_WEIGHTS_URL", "FIDFeatures", "fid_availability", "fid_from_features"]

FID_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)


def fid_availability() -> tuple[bool, str]:
    """``(ok, reason)``: can FID be computed offline (packages + Inception weights file)?"""
    try:
        import torch_fidelity  # noqa: F401
        from torchmetrics.image.fid import FrechetInceptionDistance  # noqa: F401
    except ImportError:
        return False, "FID needs torch-fidelity (pip install torch-fidelity)"
    reason = missing_hub_file_reason(FID_WEIGHTS_URL, "FID", "Inception-v3 weights file")
    return not reason, reason


class FIDFeatures(nn.Module):
    """2048-d Inception pool features of ``(B, 3, H, W)`` images in ``[0, 1]`` -> ``(B, 2048)``
    float64, the features torchmetrics' FID accumulates (its own extractor, ``normalize=True``).

    Raises:
        MissingWeightsError: the Inception weights are not in the torch cache.
    """

    def __init__(self) -> None:
        super().__init__()
        ok, reason = fid_availability()
        if not ok:
            raise MissingWeightsError(reason)
        from torchmetrics.image.fid import FrechetInceptionDistance

        self.metric = FrechetInceptionDistance(feature=2048, normalize=True)
        self.metric.eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        device = self.metric.device
        x = (images.to(device, torch.float32).clamp(0, 1) * 255).byte()
        return self.metric.inception(x).reshape(len(images), -1).double().cpu()


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float | None:
    """Fréchet distance between two ``(N, D)`` feature sets (torchmetrics' formula); ``None``
    when either set has fewer than 2 samples (the covariance is undefined)."""
    from torchmetrics.image.fid import _compute_fid

    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"expected (N, D) feature sets, got {tuple(real.shape)}, {tuple(fake.shape)}"
        )
    if len(real) < 2 or len(fake) < 2:
        return None
    real, fake = real.double(), fake.double()
    mu1, mu2 = real.mean(0), fake.mean(0)
    sigma1 = torch.cov(real.T)
    sigma2 = torch.cov(fake.T)
    return float(_compute_fid(mu1, sigma1, mu2, sigma2))
