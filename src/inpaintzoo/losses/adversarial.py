"""Adversarial losses on discriminator logits: non-saturating (nsgan), least squares (lsgan), hinge.

Definitions follow EdgeConnect's ``AdversarialLoss`` (knazeri/edge-connect ``src/loss.py``) with
one change of interface: ``outputs`` are always the discriminator's raw **logits**. For
``nsgan`` EdgeConnect applies a sigmoid inside the discriminator and then ``BCELoss``; here
``binary_cross_entropy_with_logits`` computes the same value without the saturation of
``log(sigmoid(x))`` for large ``|x|``. ``lsgan`` is ``MSE(outputs, label)`` on the raw
outputs. Hinge: discriminator ``mean(relu(1 - x))`` on real, ``mean(relu(1 + x))`` on fake;
generator ``-mean(x)`` (``is_real`` ignored).

Losses are computed in float32 (safe under autocast) and returned as scalars.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ADVERSARIAL_KINDS", "AdversarialLoss"]

ADVERSARIAL_KINDS: tuple[str, ...] = ("nsgan", "lsgan", "hinge")


class AdversarialLoss(nn.Module):
    """``AdversarialLoss(kind)(outputs, is_real, for_discriminator=True) -> scalar``.

    Args:
        kind: ``"nsgan"`` | ``"lsgan"`` | ``"hinge"``.
        real_label, fake_label: targets of nsgan/lsgan (EdgeConnect: 1 and 0).

    For nsgan and lsgan the generator loss is the loss of its fakes labelled real:
    ``loss(d_fake, is_real=True, for_discriminator=False)`` (``for_discriminator`` changes
    nothing for them). For hinge the generator loss is ``-mean(d_fake)``.
    """

    def __init__(self, kind: str = "nsgan", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        if kind not in ADVERSARIAL_KINDS:
            kinds = ", ".join(ADVERSARIAL_KINDS)
            raise ValueError(f"unknown adversarial loss kind {kind!r}; choose one of: {kinds}")
        self.kind = kind
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def forward(
        self, outputs: torch.Tensor, is_real: bool, for_discriminator: bool = True
    ) -> torch.Tensor:
        logits = outputs.float()
        if self.kind == "hinge":
            if not for_discriminator:
                return -logits.mean()
            if is_real:
                return F.relu(1.0 - logits).mean()
            return F.relu(1.0 + logits).mean()
        label = self.real_label if is_real else self.fake_label
        target = torch.full_like(logits, label)
        if self.kind == "nsgan":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, real_label={self.real_label}, fake_label={self.fake_label}"
