"""LPIPS (Zhang et al., CVPR 2018) through the ``lpips`` package, offline-safe.

``lpips.LPIPS(net=..., pretrained=True)`` loads two things:

* its linear calibration layers from a file **inside the package**
  (``lpips/weights/v0.1/<net>.pth``, always present offline);
* the backbone from torchvision's ImageNet weights, i.e. the torch hub cache file
  ``alexnet-owt-7be5be79.pth`` (``net="alex"``) or ``vgg16-397923af.pth`` (``net="vgg"``),
  which torchvision would otherwise try to download.

:func:`lpips_availability` checks for both files without network access. The evaluation marks
the column "n/a" with that reason when they are missing; :class:`LPIPSMetric` raises
:class:`~inpaintzoo.losses.MissingWeightsError` rather than downloading.

``weights="random"`` builds the same network with a randomly initialised backbone
(``pnet_rand=True``) - for tests of the code path and timing only, never for results. It keeps
the package's own linear layers (``pretrained=True``): with random linear layers (``pretrained=
False``) the weights could be negative and the "distance" could be negative; the linear-layer
file ships inside the package, so this needs no download either.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from inpaintzoo.conventions import to_signed
from inpaintzoo.losses.perceptual import (
    MissingWeightsError,
    exclude_from_state_dict,
    hub_checkpoint_path,
)
from inpaintzoo.metrics._hub import missing_hub_file_reason

__all__ = ["LPIPS_NETS", "LPIPSMetric", "lpips_availability", "lpips_backbone_path"]

logger = logging.getLogger(__name__)

LPIPS_NETS: tuple[str, ...] = ("alex", "vgg")


def _backbone_url(net: str) -> str:
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    if net == "alex":
        return AlexNet_Weights.IMAGENET1K_V1.url  # .../alexnet-owt-7be5be79.pth
    if net == "vgg":
        return VGG16_Weights.IMAGENET1K_V1.url  # .../vgg16-397923af.pth
    raise ValueError(f"unknown LPIPS net {net!r}; choose one of: {', '.join(LPIPS_NETS)}")


def lpips_backbone_path(net: str) -> Path:
    """Torch hub cache path of the torchvision backbone file LPIPS ``net`` needs."""
    return hub_checkpoint_path(_backbone_url(net))


def _linear_weights_path(net: str) -> Path | None:
    try:
        import lpips
    except ImportError:
        return None
    return Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"


def lpips_availability(net: str = "alex") -> tuple[bool, str]:
    """``(ok, reason)``: can ``LPIPSMetric(net, weights="imagenet")`` be built offline?

    Checks the ``lpips`` package, its linear-layer file and the torchvision backbone file in
    the torch hub cache; never touches the network. ``reason`` is empty when ``ok``.
    """
    url = _backbone_url(net)
    linear = _linear_weights_path(net)
    if linear is None:
        return False, "the 'lpips' package is not installed (pip install lpips)"
    if not linear.is_file():
        return False, f"the lpips package lacks its linear-layer weights {linear}"
    reason = missing_hub_file_reason(url, f"LPIPS ({net})", "ImageNet backbone file")
    return not reason, reason


class LPIPSMetric(nn.Module):
    """Per-image LPIPS distance, ``metric(pred, target) -> (B,)``, inputs in ``[0, 1]``.

    Args:
        net: ``"alex"`` (the usual LPIPS column) or ``"vgg"``.
        weights: ``"imagenet"`` (needs the backbone file, see :func:`lpips_availability`;
            raises :class:`~inpaintzoo.losses.MissingWeightsError` when absent) or ``"random"``
            (random backbone, logged; tests and timing only).

    Frozen, eval mode, no gradient; the weights stay out of ``state_dict()``. Inputs are mapped
    to ``[-1, 1]`` as LPIPS expects. Lower is better; identical images give 0.
    """

    def __init__(self, net: str = "alex", weights: str = "imagenet") -> None:
        super().__init__()
        if net not in LPIPS_NETS:
            raise ValueError(f"unknown LPIPS net {net!r}; choose one of: {', '.join(LPIPS_NETS)}")
        if weights not in ("imagenet", "random"):
            raise ValueError(f"weights must be 'imagenet' or 'random', got {weights!r}")
        import lpips

        self.net_name = net
        self.weights = weights
        if weights == "imagenet":
            ok, reason = lpips_availability(net)
            if not ok:
                raise MissingWeightsError(
                    f"{reason}. Otherwise leave the LPIPS column out (it is reported as n/a)."
                )
        else:
            logger.warning(
                "LPIPSMetric: %s backbone with RANDOM weights (weights='random'); the distances "
                "are meaningless - use only for tests and timing",
                net,
            )
        with warnings.catch_warnings():
            # lpips calls torchvision with the deprecated ``pretrained=`` keyword
            warnings.filterwarnings("ignore", message=".*pretrained.*", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*weight enum.*", category=UserWarning)
            self.model = lpips.LPIPS(
                net=net, pretrained=True, pnet_rand=weights == "random", verbose=False
            )
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.model.eval()
        exclude_from_state_dict(self)

    def train(self, mode: bool = True) -> LPIPSMetric:
        """Always stays in eval mode."""
        return super().train(False)

    @property
    def key(self) -> str:
        """Results-schema metric key: ``lpips_alex`` / ``lpips_vgg``."""
        return f"lpips_{self.net_name}"

    @torch.no_grad()
    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if pred.shape != target.shape or pred.ndim != 4 or pred.shape[1] != 3:
            raise ValueError(
                f"expected two (B, 3, H, W) images, got {tuple(pred.shape)}, {tuple(target.shape)}"
            )
        parameter = next(self.model.parameters())
        p = to_signed(pred.to(parameter.device, torch.float32))
        t = to_signed(target.to(parameter.device, torch.float32))
        return self.model(p, t, normalize=False).reshape(-1)

    def extra_repr(self) -> str:
        return f"net={self.net_name!r}, weights={self.weights!r}"
