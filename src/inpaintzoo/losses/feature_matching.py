"""Discriminator feature-matching loss (EdgeConnect's edge generator, weight ``FM_LOSS_WEIGHT`` 10).

EdgeConnect (knazeri/edge-connect ``src/models.py``): sum over the discriminator's layers of
``L1(feat_fake_i, feat_real_i.detach())``; the real features carry no gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["feature_matching_loss"]


def feature_matching_loss(
    fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """``sum_i mean|fake_i - real_i.detach()|`` over paired layers (scalar, float32)."""
    fake_features = list(fake_features)
    real_features = list(real_features)
    if len(fake_features) != len(real_features):
        raise ValueError(
            f"got {len(fake_features)} fake and {len(real_features)} real feature maps; "
            "they must pair up layer by layer"
        )
    if not fake_features:
        raise ValueError("feature_matching_loss needs at least one layer")
    total = fake_features[0].new_zeros((), dtype=torch.float32)
    for fake, real in zip(fake_features, real_features):
        total = total + F.l1_loss(fake.float(), real.detach().float())
    return total
