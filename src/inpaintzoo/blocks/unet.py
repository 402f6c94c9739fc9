"""The pix2pix U-Net generator as the inpainting repositories built on it use it.

Isola, Zhu, Zhou, Efros. "Image-to-Image Translation with Conditional Adversarial Networks", CVPR
2017 (junyanz/pytorch-CycleGAN-and-pix2pix ``UnetGenerator``). CSA's rough network ``netP``
(KumapowerLIU/CSA-inpainting ``models/networks.py`` ``UnetGenerator``) and Shift-Net's generator
(Zhaoyi-Yan/Shift-Net_pytorch ``models/modules/unet.py``, ``shift_unet.py``) are copies of it with
two differences from the pix2pix original, kept here: every convolution has a bias (pix2pix drops
it before batch norm) and instance norms are affine.

The original builds the net recursively (``UnetSkipConnectionBlock`` inside
``UnetSkipConnectionBlock``); :class:`Pix2PixUNet` writes the same computation flat, level by
level. One property of the original matters for its outputs and is reproduced: every inner block
starts with an **in-place** ``LeakyReLU(0.2)`` on its input, which is also the tensor the parent
block concatenates as its skip connection, so the skips carry ``LeakyReLU(d_i)``, not ``d_i``.

Levels ``i = 0 .. L-1`` (0 = outermost, ``L = num_downs``), widths ``w_i = min(base * 2**i,
max)``::

    d_0 = conv(x)                                   (in -> w_0, k4 s2 p1)
    d_i = norm(conv(lrelu(d_{i-1})))                (w_{i-1} -> w_i, k4 s2 p1; no norm at L-1)
    u_{L-1} = norm(convT(relu(d_{L-1})))            (w_{L-1} -> w_{L-2}, k4 s2 p1)
    u_i = norm(convT(relu(cat(u_{i+1}, lrelu(d_i)))))   (2 w_i -> w_{i-1})   for 0 < i < L-1
    y   = tanh(convT(relu(cat(u_1, lrelu(d_0)))))   (2 w_0 -> out)

Shapes: ``x (B, in, H, W) -> y (B, out, H, W)`` with ``H, W`` multiples of ``2**L`` (256 for the
8-level ``unet_256``). Value range: whatever the caller trains it for (the repositories use
``[-1, 1]`` images and the ``tanh`` output).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from inpaintzoo.blocks.layers import norm2d

__all__ = ["Pix2PixUNet", "pix2pix_depth_from_keys", "pix2pix_key_rules", "unet_widths"]

UNET_NORMS = ("instance", "batch", "none")


def unet_widths(base_channels: int, max_channels: int, num_downs: int) -> list[int]:
    """``[w_0, ..., w_{L-1}]`` with ``w_i = min(base * 2**i, max)`` (64..512 for ``unet_256``)."""
    return [min(base_channels * 2**i, max_channels) for i in range(num_downs)]


class _DownLevel(nn.Module):
    """``norm(conv(x))`` (the pre-activation ``LeakyReLU`` is applied by the U-Net, once, because
    the same activated tensor is also the parent's skip connection)."""

    def __init__(self, cin: int, cout: int, norm: nn.Module | None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=2, padding=1)
        if norm is not None:
            self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.norm(x) if hasattr(self, "norm") else x


class _UpLevel(nn.Module):
    """``norm(convT(z))`` or ``tanh(convT(z))`` (the pre-activation ``ReLU`` and any layer placed
    between it and the transposed conv are applied by the U-Net)."""

    def __init__(self, cin: int, cout: int, norm: nn.Module | None, tanh: bool = False) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
        if norm is not None:
            self.norm = norm
        self.tanh = tanh

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = self.conv(z)
        if hasattr(self, "norm"):
            z = self.norm(z)
        return torch.tanh(z) if self.tanh else z


class Pix2PixUNet(nn.Module):
    """pix2pix U-Net (see the module docstring for the computation).

    Args:
        in_channels, out_channels: image channels in and out.
        num_downs: stride-2 levels ``L`` (8 = ``unet_256``: 256 px down to 1x1).
        base_channels: ``w_0`` (``ngf`` = 64).
        max_channels: widest level (``8 * ngf`` = 512).
        norm: ``instance`` (affine, no running statistics: CSA and the Shift-Net repository
            default), ``batch`` or ``none``.
        output_tanh: end with ``tanh`` (pix2pix, CSA's rough network, Shift-Net).
        extra_up_channels: ``{level: channels}`` added to that level's transposed-conv input
            (Shift-Net's shift level takes ``3 w_i`` instead of ``2 w_i``).

    Submodules: ``down[i]`` (``conv``, ``norm``) and ``up[i]`` (``conv``, ``norm``), so state-dict
    keys read ``down.3.conv.weight``, ``up.2.norm.bias``.

    Example:
        >>> net = Pix2PixUNet(3, 3, num_downs=6, base_channels=8, max_channels=32)
        >>> net(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 3, 64, 64])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_downs: int = 8,
        base_channels: int = 64,
        max_channels: int = 512,
        norm: str = "instance",
        output_tanh: bool = True,
        extra_up_channels: dict[int, int] | None = None,
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ValueError(f"num_downs must be >= 2, got {num_downs}")
        if norm not in UNET_NORMS:
            raise ValueError(f"unknown U-Net norm {norm!r}; choose one of {UNET_NORMS}")
        widths = unet_widths(base_channels, max_channels, num_downs)
        extra = dict(extra_up_channels or {})
        bad = [lv for lv in extra if not 0 < lv < num_downs - 1]
        if bad:
            raise ValueError(f"extra_up_channels levels {bad} must be inner levels 1..L-2")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.num_downs = num_downs
        self.widths = widths
        self.size_multiple = 2**num_downs

        def make_norm(channels: int) -> nn.Module | None:
            return None if norm == "none" else norm2d(norm, channels, affine=True)

        last = num_downs - 1
        self.down = nn.ModuleList(
            [_DownLevel(in_channels, widths[0], None)]
            + [
                _DownLevel(widths[i - 1], widths[i], make_norm(widths[i]) if i < last else None)
                for i in range(1, num_downs)
            ]
        )
        ups: list[nn.Module] = [_UpLevel(2 * widths[0], out_channels, None, tanh=output_tanh)]
        for i in range(1, last):
            ups.append(
                _UpLevel(2 * widths[i] + extra.get(i, 0), widths[i - 1], make_norm(widths[i - 1]))
            )
        ups.append(_UpLevel(widths[last], widths[last - 1], make_norm(widths[last - 1])))
        self.up = nn.ModuleList(ups)

    def check_size(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(
                f"this {self.num_downs}-level U-Net needs H and W divisible by {m}, got {h}x{w}; "
                "pad the input (inpaintzoo's predictor pads and crops back)"
            )

    def encode(self, x: torch.Tensor, levels: int | None = None) -> list[torch.Tensor]:
        """``[d_0, ..., d_{L-1}]`` (level ``i`` at ``H / 2**(i+1)`` with ``w_i`` channels); only
        the first ``levels`` of them when given."""
        self.check_size(x)
        count = self.num_downs if levels is None else int(levels)
        feats = [self.down[0](x)]
        for level in self.down[1:count]:
            feats.append(level(F.leaky_relu(feats[-1], 0.2)))
        return feats

    def decode(
        self,
        feats: list[torch.Tensor],
        between: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The decoder on :meth:`encode`'s features. ``between(level, z)`` (optional) runs at
        every level on the activated input ``relu(cat(u_{i+1}, lrelu(d_i)))`` of the transposed
        conv and returns what the conv receives (Shift-Net's shift layer)."""
        last = self.num_downs - 1
        z = F.relu(feats[last])
        if between is not None:
            z = between(last, z)
        u = self.up[last](z)
        for i in range(last - 1, -1, -1):
            z = F.relu(torch.cat([u, F.leaky_relu(feats[i], 0.2)], dim=1))
            if between is not None:
                z = between(i, z)
            u = self.up[i](z)
        return u

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


# --------------------------------------------------------------------------- official layout
def pix2pix_key_rules(
    num_downs: int, prefix: str, special: Mapping[int, Mapping[int, str]] | None = None
):
    """Name rules for an official recursive pix2pix U-Net (``UnetSkipConnectionBlock`` nested in
    ``model``) -> :class:`~inpaintzoo.blocks.unet.Pix2PixUNet` keys under ``prefix``.

    The official key of a layer at depth ``d`` is ``model.model.1.`` + ``model.3.`` x (d - 1) +
    ``model.<index>.<param>``; ``<index>`` names the layer inside its block's ``nn.Sequential``:
    outermost ``0`` down conv, ``3`` up conv; inner blocks ``1`` down conv, ``2`` down norm, ``5``
    up conv, ``6`` up norm; innermost ``1`` down conv, ``3`` up conv, ``4`` up norm. ``special``
    overrides the index names of given depths (Shift-Net's shift block: ``7`` up conv, ``8`` up
    norm)."""
    last = num_downs - 1
    rules = []
    for depth in range(num_downs):
        path = "model\\." + ("model\\.1\\." if depth else "") + "model\\.3\\." * max(depth - 1, 0)
        if depth == 0:
            names = {0: "down.0.conv", 3: "up.0.conv"}
        elif depth == last:
            names = {1: f"down.{depth}.conv", 3: f"up.{depth}.conv", 4: f"up.{depth}.norm"}
        else:
            names = {
                1: f"down.{depth}.conv",
                2: f"down.{depth}.norm",
                5: f"up.{depth}.conv",
                6: f"up.{depth}.norm",
            }
        if special and depth in special:
            names = {i: n.format(depth=depth) for i, n in special[depth].items()}
        for index, name in names.items():
            rules.append((rf"{path}model\.{index}\.(\w+)", rf"{prefix}{name}.\1"))
    return rules


def pix2pix_depth_from_keys(keys: list[str]) -> int:
    """Depth of an official recursive U-Net from its key names (``model.3`` hops)."""
    depth = 0
    for key in keys:
        found = re.fullmatch(r"model\.(model\.1\.)?((?:model\.3\.)*)model\.\d+\.\w+", key)
        if found and found.group(1):
            depth = max(depth, 1 + found.group(2).count("model.3."))
    return depth + 1
