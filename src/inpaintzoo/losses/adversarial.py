"""Adversarial losses: one object owns both the discriminator's and the generator's terms.

Kinds (``outputs`` are the discriminator's raw outputs, logits where a kind applies a sigmoid):

* ``nsgan``: BCE with labels 1/0 on ``sigmoid(outputs)`` (EdgeConnect's and CTSDG's default),
  computed with ``binary_cross_entropy_with_logits`` (no saturation of ``log(sigmoid(x))``).
* ``lsgan``: ``MSE(outputs, label)`` on the raw outputs (StructureFlow's multi-scale D, which
  has no sigmoid).
* ``lsgan_sigmoid``: ``MSE(sigmoid(outputs), label)``: EdgeConnect's official ``lsgan``, whose
  discriminator ends in a sigmoid for every kind but hinge (knazeri/edge-connect
  ``src/networks.py`` / ``src/loss.py``). On the same weights it differs from ``lsgan``.
* ``hinge``: D ``mean(relu(1 - real)) + mean(relu(1 + fake))``, G ``-mean(fake)`` (DeepFill v2's
  SN-PatchGAN, structure knowledge).
* ``wgan_gp``: critic ``mean(fake) - mean(real) + gp_weight * GP``, G ``-mean(fake)`` with the
  gradient penalty on random interpolates ``(||grad||_2 - 1)^2``; with a ``mask`` the gradient
  is multiplied by the mask first (DeepFill v1's masked penalty: only hole pixels count).
* ``ralsgan``: relativistic-average LSGAN (CSA):
  D ``(mean((r - mean f - 1)^2) + mean((f - mean r + 1)^2)) / 2``,
  G ``(mean((r - mean f + 1)^2) + mean((f - mean r - 1)^2)) / 2``.

Discriminator outputs may be a tensor, a ``(logits, extras...)`` tuple (the first element is
used: EdgeConnect returns its features, CTSDG its edge logits) or a list of tensors (multi-scale
discriminators: the loss is the mean over scales). Losses are float32 scalars (autocast-safe).

Example:
    >>> import torch
    >>> loss = AdversarialLoss("hinge")
    >>> real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    >>> float(loss.discriminator_loss(real, fake))
    1.0
    >>> float(loss.generator_loss(fake))
    0.75
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ADVERSARIAL_KINDS", "AdversarialLoss", "gradient_penalty"]

ADVERSARIAL_KINDS: tuple[str, ...] = (
    "nsgan",
    "lsgan",
    "lsgan_sigmoid",
    "hinge",
    "wgan_gp",
    "ralsgan",
)


def _logits(outputs: Any) -> list[torch.Tensor]:
    """Discriminator output(s) as a list of float32 tensors (one per scale)."""
    if isinstance(outputs, tuple):
        outputs = outputs[0]
    if isinstance(outputs, list):
        return [o.float() for o in outputs]
    return [outputs.float()]


def gradient_penalty(
    critic: Callable[[torch.Tensor], Any],
    real: torch.Tensor,
    fake: torch.Tensor,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty ``mean((||grad D(x_hat)||_2 - 1)^2)`` on ``x_hat = a real + (1 - a) fake``.

    ``a ~ U(0, 1)`` per sample. With ``mask`` (B, 1, H, W) the gradient is multiplied by the mask
    before its norm (DeepFill v1: only the hole's pixels are penalised). Norms are per sample
    over all other dimensions. The graph is kept (``create_graph``) so the penalty trains D.
    """
    alpha = torch.rand(
        (real.shape[0],) + (1,) * (real.ndim - 1),
        device=real.device,
        dtype=real.dtype,
        generator=generator,
    )
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = sum(o.sum() for o in _logits(critic(mixed)))
    (grad,) = torch.autograd.grad(scores, mixed, create_graph=True)
    if mask is not None:
        grad = grad * mask
    norm = grad.float().flatten(1).norm(2, dim=1)
    return ((norm - 1.0) ** 2).mean()


class AdversarialLoss(nn.Module):
    """The adversarial loss of one kind; see the module docstring for the definitions.

    Args:
        kind: one of :data:`ADVERSARIAL_KINDS`.
        real_label, fake_label: targets of the BCE/least-squares kinds (1 and 0).
        gp_weight: weight of the gradient penalty (``wgan_gp``; DeepFill v1: 10).

    ``discriminator_loss(real_out, fake_out, ...)`` is the discriminator's (critic's) loss,
    ``generator_loss(fake_out, real_out=None)`` the generator's (``ralsgan`` needs the real
    outputs). ``forward(outputs, is_real, for_discriminator)`` is the per-side term of the
    BCE/least-squares/hinge kinds (EdgeConnect's interface).
    """

    def __init__(
        self,
        kind: str = "nsgan",
        real_label: float = 1.0,
        fake_label: float = 0.0,
        gp_weight: float = 10.0,
    ) -> None:
        super().__init__()
        if kind not in ADVERSARIAL_KINDS:
            kinds = ", ".join(ADVERSARIAL_KINDS)
            raise ValueError(f"unknown adversarial loss kind {kind!r}; choose one of: {kinds}")
        self.kind = kind
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)
        self.gp_weight = float(gp_weight)

    # ------------------------------------------------------------------ one side
    def _side(self, logits: torch.Tensor, is_real: bool, for_discriminator: bool) -> torch.Tensor:
        if self.kind in ("hinge", "wgan_gp"):
            if not for_discriminator:
                return -logits.mean()
            if self.kind == "wgan_gp":
                return -logits.mean() if is_real else logits.mean()
            return F.relu(1.0 - logits).mean() if is_real else F.relu(1.0 + logits).mean()
        if self.kind == "ralsgan":
            raise ValueError("ralsgan compares real and fake outputs: use discriminator_loss")
        label = self.real_label if is_real else self.fake_label
        target = torch.full_like(logits, label)
        if self.kind == "nsgan":
            return F.binary_cross_entropy_with_logits(logits, target)
        if self.kind == "lsgan_sigmoid":
            return F.mse_loss(torch.sigmoid(logits), target)
        return F.mse_loss(logits, target)

    def forward(self, outputs: Any, is_real: bool, for_discriminator: bool = True) -> torch.Tensor:
        """The term of one side: ``loss(D(x), is_real)``; the generator's is
        ``loss(D(fake), True, for_discriminator=False)``. Mean over scales."""
        terms = [self._side(o, is_real, for_discriminator) for o in _logits(outputs)]
        return sum(terms) / len(terms)

    # ------------------------------------------------------------------ both sides
    def discriminator_loss(
        self,
        real_out: Any,
        fake_out: Any,
        critic: Callable[[torch.Tensor], Any] | None = None,
        real: torch.Tensor | None = None,
        fake: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The discriminator's loss ``L(real) + L(fake)`` (mean over scales).

        ``wgan_gp`` also needs ``critic`` with its ``real`` and (detached) ``fake`` inputs for the
        gradient penalty, and takes an optional ``mask`` (DeepFill v1's masked penalty).
        """
        reals, fakes = _logits(real_out), _logits(fake_out)
        if len(reals) != len(fakes):
            raise ValueError(f"{len(reals)} real but {len(fakes)} fake discriminator outputs")
        if self.kind == "ralsgan":
            terms = [
                0.5 * (((r - f.mean() - 1) ** 2).mean() + ((f - r.mean() + 1) ** 2).mean())
                for r, f in zip(reals, fakes)
            ]
        else:
            terms = [
                self._side(r, True, True) + self._side(f, False, True) for r, f in zip(reals, fakes)
            ]
        loss = sum(terms) / len(terms)
        if self.kind == "wgan_gp" and self.gp_weight:
            if critic is None or real is None or fake is None:
                raise ValueError("wgan_gp needs the critic and its real and fake inputs")
            loss = loss + self.gp_weight * gradient_penalty(critic, real, fake, mask)
        return loss

    def generator_loss(self, fake_out: Any, real_out: Any | None = None) -> torch.Tensor:
        """The generator's adversarial loss (mean over scales); ``ralsgan`` needs ``real_out``
        (the discriminator's outputs on real images, treated as constants)."""
        fakes = _logits(fake_out)
        if self.kind == "ralsgan":
            if real_out is None:
                raise ValueError("ralsgan's generator loss needs the real outputs (real_out)")
            reals = [r.detach() for r in _logits(real_out)]
            terms = [
                0.5 * (((r - f.mean() + 1) ** 2).mean() + ((f - r.mean() - 1) ** 2).mean())
                for r, f in zip(reals, fakes)
            ]
        else:
            terms = [self._side(f, True, False) for f in fakes]
        return sum(terms) / len(terms)

    def extra_repr(self) -> str:
        extra = f", gp_weight={self.gp_weight}" if self.kind == "wgan_gp" else ""
        labels = f"real_label={self.real_label}, fake_label={self.fake_label}"
        return f"kind={self.kind!r}, {labels}{extra}"
