"""Bi-directional Gated Feature Fusion (Bi-GFF) of CTSDG (Guo, Yang, Huang, ICCV 2021).

Facts from ``specs/ctsdg.md`` §3.5 (xiefan-guo/ctsdg ``models/generator/bigff.py``) and the paper
(Eq. 1-3); an independent implementation. With ``E = cat(F_t, F_s)``:

* ``G_s2t = sigmoid(conv3x3(E))``, ``G_t2s = sigmoid(conv3x3(E))`` (two convs with bias);
* ``F_t' = F_t + gamma_t * (G_s2t * F_s)`` — structure features gated into the texture stream;
* ``F_s' = F_s + gamma_s * (G_t2s * F_t')`` — uses the **updated** texture feature ``F_t'``
  (official order; the paper's equations write ``F_t``);
* output ``cat(F_t', F_s')``. ``gamma_t``, ``gamma_s`` are learned scalars initialised to 0, so the
  block starts as the identity.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BiGFF"]


class BiGFF(nn.Module):
    """Bi-GFF: exchange information between a texture and a structure feature map.

    Args:
        channels: channels of each stream (64 in CTSDG).
        kernel_size: gate conv kernel (3, padding ``kernel_size // 2``).

    Shape:
        ``forward(texture (B, C, H, W), structure (B, C, H, W)) -> (B, 2C, H, W)``
        = ``cat(F_t', F_s')``. ``C = channels``; a mismatch raises ``ValueError``.
        Parameters: ``2 * (2C * C * k * k + C) + 2`` (147,586 for C = 64).

    Example:
        >>> fuse = BiGFF(8)
        >>> fuse(torch.rand(2, 8, 16, 16), torch.rand(2, 8, 16, 16)).shape
        torch.Size([2, 16, 16, 16])
    """

    def __init__(self, channels: int = 64, kernel_size: int = 3) -> None:
        super().__init__()
        self.channels = channels
        pad = kernel_size // 2
        self.structure_gate = nn.Conv2d(2 * channels, channels, kernel_size, padding=pad)
        self.texture_gate = nn.Conv2d(2 * channels, channels, kernel_size, padding=pad)
        self.texture_gamma = nn.Parameter(torch.zeros(1))
        self.structure_gamma = nn.Parameter(torch.zeros(1))

    def gates(
        self, texture: torch.Tensor, structure: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(G_s2t, G_t2s)``, each ``(B, C, H, W)`` in ``(0, 1)``."""
        energy = torch.cat([texture, structure], dim=1)
        return torch.sigmoid(self.structure_gate(energy)), torch.sigmoid(self.texture_gate(energy))

    def forward(self, texture: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
        if (
            texture.ndim != 4
            or texture.shape != structure.shape
            or texture.shape[1] != self.channels
        ):
            raise ValueError(
                f"BiGFF expects texture and structure of the same shape (B, {self.channels}, H, W),"
                f" got {tuple(texture.shape)} and {tuple(structure.shape)}"
            )
        gate_s2t, gate_t2s = self.gates(texture, structure)
        texture = texture + self.texture_gamma * (gate_s2t * structure)
        structure = structure + self.structure_gamma * (gate_t2s * texture)
        return torch.cat([texture, structure], dim=1)
