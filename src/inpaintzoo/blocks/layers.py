"""The one conv-norm-activation factory of the zoo, and its name sets.

* :func:`activation` by name: ``relu``, ``leaky_relu`` (slope 0.2 unless given), ``elu``,
  ``tanh``, ``sigmoid``, ``none``.
* :func:`norm2d` by name: ``batch``, ``instance`` (per-sample statistics in train and eval, as
  every inpainting repo uses it), ``layer`` (:class:`ChannelLayerNorm`, statistics over
  ``(C, H, W)``), ``none``; ``affine`` and ``eps`` where they apply.
* :class:`ConvNormAct`: padding -> convolution -> norm -> activation with a conv kind:
  ``plain`` (``nn.Conv2d``), ``spectral`` (spectral-normalised conv), ``gated``
  (:class:`GatedConv2d`, DeepFill v2) or ``partial`` (:class:`~inpaintzoo.blocks.PartialConv2d`,
  PConv/CTSDG; the block then maps ``(x, valid) -> (out, new_valid)``), optionally transposed.
* :class:`GatedConv2d`: one convolution with ``2 * out_channels`` outputs split in halves,
  ``act(features) * sigmoid(gate)`` (Yu et al., "Free-Form Image Inpainting with Gated
  Convolution", ICCV 2019; the released TF code's ``gen_conv``).

Submodule names are ``pad``, ``conv``, ``norm``, ``act`` (a ``nn.Identity`` where absent), so
state dicts are stable across the options.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from inpaintzoo.blocks.conv import spectral_norm

__all__ = [
    "ACTIVATIONS",
    "CONV_KINDS",
    "NORMS",
    "ChannelLayerNorm",
    "ConvNormAct",
    "GatedConv2d",
    "activation",
    "norm2d",
]

_ACTIVATIONS: dict[str, Callable[[float], nn.Module]] = {
    "relu": lambda slope: nn.ReLU(inplace=True),
    "leaky_relu": lambda slope: nn.LeakyReLU(slope, inplace=True),
    "elu": lambda slope: nn.ELU(inplace=True),
    "tanh": lambda slope: nn.Tanh(),
    "sigmoid": lambda slope: nn.Sigmoid(),
    "none": lambda slope: nn.Identity(),
}
ACTIVATIONS: tuple[str, ...] = tuple(_ACTIVATIONS)
NORMS: tuple[str, ...] = ("batch", "instance", "layer", "none")
CONV_KINDS: tuple[str, ...] = ("plain", "spectral", "gated", "partial")


def activation(name: str, negative_slope: float = 0.2) -> nn.Module:
    """An activation module by name (see :data:`ACTIVATIONS`).

    Example:
        >>> activation("leaky_relu")
        LeakyReLU(negative_slope=0.2, inplace=True)
    """
    try:
        return _ACTIVATIONS[name](negative_slope)
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}") from None


_make_activation = activation  # for classes whose argument is called `activation`


class ChannelLayerNorm(nn.Module):
    """Layer norm over ``(C, H, W)`` of each sample with a per-channel affine (C + C params).

    Shape: ``(B, C, H, W) -> (B, C, H, W)``.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # statistics over (C, H, W) written out (not F.layer_norm(x, x.shape[1:])) so the
        # graph keeps H and W dynamic under ONNX export
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        var = x.var(dim=(1, 2, 3), keepdim=True, unbiased=False)
        x = (x - mean) * torch.rsqrt(var + self.eps)
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def norm2d(
    name: str, channels: int, affine: bool | None = None, eps: float | None = None
) -> nn.Module:
    """A 2-d normalisation layer by name (see :data:`NORMS`).

    ``affine`` defaults to the layer's usual choice: True for ``batch`` and ``layer``, False
    for ``instance`` (EdgeConnect, StructureFlow); ``eps`` to PyTorch's 1e-5.

    Example:
        >>> norm = norm2d("instance", 8)
        >>> type(norm).__name__, norm.affine, norm.track_running_stats
        ('InstanceNorm2d', False, False)
    """
    eps = 1e-5 if eps is None else float(eps)
    if name == "batch":
        return nn.BatchNorm2d(channels, eps=eps, affine=True if affine is None else affine)
    if name == "instance":
        return nn.InstanceNorm2d(channels, eps=eps, affine=bool(affine), track_running_stats=False)
    if name == "layer":
        if affine is False:
            raise ValueError("the layer norm here always has a per-channel affine")
        return ChannelLayerNorm(channels, eps=eps)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {name!r}; choose one of {NORMS}")


class GatedConv2d(nn.Module):
    """Gated convolution: ``act(F) * sigmoid(G)`` with ``[F, G]`` the halves of one conv.

    DeepFill v2 (Yu et al., ICCV 2019) as released: a single convolution with
    ``2 * out_channels`` output channels whose first half are features and second half gates
    (so the parameter count is that of one conv with doubled outputs). With ``out_channels == 3``
    output layers the official code uses no gate; build those as plain convs.

    Args:
        in_channels, out_channels: channels (the conv itself has ``2 * out_channels`` outputs).
        kernel_size, stride, padding, dilation, bias: of the conv (zero padding).
        activation: applied to the feature half (DeepFill v2: ``elu``; ``none`` for linear).
        spectral: spectral-normalise the conv.

    Shape:
        ``(B, in, H, W) -> (B, out, H', W')``; values of the gate in ``(0, 1)``.

    Example:
        >>> conv = GatedConv2d(4, 8, 3, padding=1)
        >>> conv(torch.rand(2, 4, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        bias: bool = True,
        activation: str = "elu",
        spectral: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        conv = nn.Conv2d(
            in_channels,
            2 * out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            bias=bias,
        )
        self.conv = spectral_norm(conv, enabled=spectral)
        self.act = _make_activation(activation)
        if hasattr(self.act, "inplace"):  # the feature half is a view of the conv output
            self.act.inplace = False

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gate ``sigmoid(G)`` alone, ``(B, out, H', W')`` in ``(0, 1)``."""
        return torch.sigmoid(self.conv(x)[:, self.out_channels :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = torch.split(self.conv(x), self.out_channels, dim=1)
        return self.act(features) * torch.sigmoid(gate)


class ConvNormAct(nn.Module):
    """Padding -> convolution (plain | spectral | gated | partial) -> norm -> activation.

    Args:
        in_channels, out_channels, kernel_size, stride, dilation: conv geometry.
        padding: pixels on every side; ``None`` means "same" for stride 1,
            ``dilation * (kernel_size - 1) // 2``.
        pad_mode: ``zeros`` (inside the conv) or ``reflect`` / ``replicate`` (a separate
            padding layer, the conv itself unpadded).
        conv: one of :data:`CONV_KINDS`.
        norm: one of :data:`NORMS`; ``norm_affine``/``eps`` as :func:`norm2d`.
        activation: one of :data:`ACTIVATIONS` (for ``gated`` it acts on the feature half,
            inside the gated conv); ``negative_slope`` for ``leaky_relu``.
        bias: conv bias.
        transposed: ``nn.ConvTranspose2d`` (``plain``/``spectral`` only) with
            ``output_padding``.

    Shape:
        ``(B, in, H, W) -> (B, out, H', W')`` with the usual conv arithmetic; for ``partial``
        ``forward(x, valid) -> (out, new_valid)`` (see
        :class:`~inpaintzoo.blocks.PartialConv2d`).

    Example:
        >>> block = ConvNormAct(3, 16, 4, stride=2, padding=1, norm="instance", activation="relu")
        >>> block(torch.rand(1, 3, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        *,
        pad_mode: str = "zeros",
        conv: str = "plain",
        norm: str = "none",
        activation: str = "relu",
        bias: bool = True,
        norm_affine: bool | None = None,
        eps: float | None = None,
        negative_slope: float = 0.2,
        transposed: bool = False,
        output_padding: int = 0,
    ) -> None:
        super().__init__()
        if conv not in CONV_KINDS:
            raise ValueError(f"unknown conv kind {conv!r}; choose one of {CONV_KINDS}")
        if pad_mode not in ("zeros", "reflect", "replicate"):
            raise ValueError(f"unknown pad_mode {pad_mode!r}; choose zeros, reflect, replicate")
        if transposed and conv not in ("plain", "spectral"):
            raise ValueError(f"a transposed {conv} convolution is not supported")
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        self.kind = conv
        inner_pad = padding if pad_mode == "zeros" else 0
        if pad_mode == "reflect" and padding:
            self.pad: nn.Module = nn.ReflectionPad2d(padding)
        elif pad_mode == "replicate" and padding:
            self.pad = nn.ReplicationPad2d(padding)
        else:
            self.pad = nn.Identity()
        geometry = dict(stride=stride, padding=inner_pad, dilation=dilation, bias=bias)
        if conv == "gated":
            self.conv: nn.Module = GatedConv2d(
                in_channels, out_channels, kernel_size, activation=activation, **geometry
            )
        elif conv == "partial":
            from inpaintzoo.blocks.partial_conv import PartialConv2d  # (imports this module)

            self.conv = PartialConv2d(in_channels, out_channels, kernel_size, **geometry)
        elif transposed:
            layer = nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size, output_padding=output_padding, **geometry
            )
            self.conv = spectral_norm(layer, enabled=conv == "spectral")
        else:
            layer = nn.Conv2d(in_channels, out_channels, kernel_size, **geometry)
            self.conv = spectral_norm(layer, enabled=conv == "spectral")
        self.norm = norm2d(norm, out_channels, norm_affine, eps)
        # the gated conv applies its activation to the features, before the gate
        self.act = (
            nn.Identity() if conv == "gated" else _make_activation(activation, negative_slope)
        )

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None):
        if self.kind == "partial":
            out, new_valid = self.conv(self.pad(x), valid)
            return self.act(self.norm(out)), new_valid
        return self.act(self.norm(self.conv(self.pad(x))))
