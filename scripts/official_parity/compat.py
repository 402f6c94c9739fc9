"""Run-time shims that let the official 2019-2021 code run under today's PyTorch/NumPy/SciPy.

Nothing here is official code and no official file is edited: each shim replaces a library
function the official code calls and that no longer exists (or needs a download or a GPU).
None of them touches the networks' arithmetic; every one is listed in
docs/OFFICIAL_WEIGHTS.md ("Running the official code here").

* ``scipy.misc.imread`` / ``imresize`` (removed in SciPy 1.2/1.3; EdgeConnect's dataset):
  PIL-based replacements (``imread`` -> uint8 array; ``imresize`` -> PIL bilinear, as SciPy's
  default ``interp='bilinear'`` did);
* ``numpy.bool`` / ``numpy.float`` / ``numpy.str`` (removed in NumPy 1.24): the builtins they
  aliased;
* ``torchvision.models.vgg19/vgg16(pretrained=True)`` (used only by the training losses; the
  ImageNet weights cannot be downloaded here): the same architecture with random weights;
* StructureFlow's CUDA extension ``resample2d_cuda``: :func:`resample2d_forward`, a CPU
  implementation of the kernel's forward pass (official ``resample2d_package/
  resample2d_kernel.cu``, ``kernel_resample2d_update_output``), checked against a per-pixel loop
  (:func:`check_resample2d`); ``Resample2d.__init__`` calls ``.cuda()`` on its sigma, so
  :func:`no_cuda` makes ``Tensor.cuda`` a no-op while the networks are built;
* ``natsort`` (a StructureFlow import; only used to list numbered checkpoints): ``sorted``;
* ``yaml.load(text)`` without a ``Loader`` (refused since PyYAML 6; EdgeConnect's config):
  ``yaml.SafeLoader``;
* ``skimage.color.rgb2gray`` of a 2-D (already gray) array, which scikit-image 0.14 returned
  unchanged and today's refuses (EdgeConnect reads gray mask files through it): returned
  unchanged again.
"""

from __future__ import annotations

import contextlib
import math
import sys
import types

import numpy as np
import torch

__all__ = [
    "check_resample2d",
    "install_numpy_aliases",
    "install_offline_vgg",
    "install_resample2d_cpu",
    "install_scipy_misc",
    "install_skimage_gray_passthrough",
    "install_stub_modules",
    "install_yaml_default_loader",
    "no_cuda",
    "resample2d_forward",
]


def install_numpy_aliases() -> None:
    for name, value in (("bool", bool), ("float", float), ("int", int), ("str", str)):
        if name not in np.__dict__:
            setattr(np, name, value)


def install_scipy_misc() -> None:
    import scipy.misc
    from PIL import Image

    def imread(path, mode=None):
        image = Image.open(path)
        if mode is not None:
            image = image.convert(mode)
        return np.asarray(image)

    def imresize(arr, size, interp="bilinear"):
        arr = np.asarray(arr)
        if arr.dtype != np.uint8:
            arr = np.clip(arr, 0, 255).astype(np.uint8)
        height, width = int(size[0]), int(size[1])
        if arr.shape[0] == height and arr.shape[1] == width:
            return arr.copy()
        resample = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[interp]
        return np.asarray(Image.fromarray(arr).resize((width, height), resample))

    scipy.misc.imread = imread
    scipy.misc.imresize = imresize


def install_offline_vgg() -> None:
    import torchvision.models as models

    for name in ("vgg16", "vgg19"):
        original = getattr(models, name)
        if getattr(original, "_offline_shim", False):
            continue

        def build(pretrained=False, _original=original, **kwargs):
            kwargs.pop("weights", None)
            return _original(weights=None, **kwargs)

        build._offline_shim = True
        setattr(models, name, build)


def install_stub_modules() -> None:
    if "natsort" not in sys.modules:
        natsort = types.ModuleType("natsort")
        natsort.natsorted = sorted
        sys.modules["natsort"] = natsort


def install_yaml_default_loader() -> None:
    import yaml

    if getattr(yaml.load, "_default_loader_shim", False):
        return
    original = yaml.load

    def load(stream, Loader=None):  # noqa: N803 - PyYAML's argument name
        return original(stream, Loader=Loader or yaml.SafeLoader)

    load._default_loader_shim = True
    yaml.load = load


def install_skimage_gray_passthrough() -> None:
    import skimage.color

    original = skimage.color.rgb2gray
    if getattr(original, "_passthrough_shim", False):
        return

    def rgb2gray(image, *args, **kwargs):
        image = np.asarray(image)
        if image.ndim == 2:
            return np.ascontiguousarray(image)
        return original(image, *args, **kwargs)

    rgb2gray._passthrough_shim = True
    skimage.color.rgb2gray = rgb2gray


@contextlib.contextmanager
def no_cuda():
    """``Tensor.cuda()`` returns the tensor itself while the block runs."""
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.cuda = original


# ----------------------------------------------------------------------------- resample2d
_EPS = 1e-8


def _safe_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b == 0, a / _EPS, a / torch.where(b == 0, torch.ones_like(b), b))


def resample2d_forward(
    input1: torch.Tensor, input2: torch.Tensor, kernel_size: int, dilation: int
) -> torch.Tensor:
    """Gaussian sampling of ``input1`` (B, C, H, W) at ``input2`` = (dx, dy, sigma) per output
    pixel (B, 3, h, w), as the official CUDA kernel: for ``fy, fx < kernel_size // 2`` the rows
    ``floor(y + dy) - fy*d`` and ``floor(y + dy) + (fy + 1)*d`` (clamped), the same for columns,
    weights ``exp(-t^2 / (2 sigma^2))`` with ``t`` the distance to the sample point along each
    axis, output = weighted sum / sum of weights. float32 throughout, like the kernel."""
    b, c, height, width = input1.shape
    h, w = input2.shape[-2:]
    dx, dy, sigma = input2[:, 0:1], input2[:, 1:2], input2[:, 2:3]
    xs = torch.arange(w, dtype=input1.dtype).view(1, 1, 1, w)
    ys = torch.arange(h, dtype=input1.dtype).view(1, 1, h, 1)
    xf, yf = xs + dx, ys + dy
    x0, y0 = torch.floor(xf), torch.floor(yf)
    alpha, beta = xf - x0, yf - y0
    two_s2 = 2 * sigma * sigma
    flat = input1.reshape(b, c, height * width)

    def gather(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        index = (rows * width + cols).reshape(b, 1, h * w).expand(b, c, h * w)
        return torch.gather(flat, 2, index).reshape(b, c, h, w)

    val = torch.zeros(b, c, h, w, dtype=input1.dtype)
    total = torch.zeros(b, 1, h, w, dtype=input1.dtype)
    for fy in range(kernel_size // 2):
        y_top = (y0 - fy * dilation).long().clamp(0, height - 1)
        y_bot = (y0 + (fy + 1) * dilation).long().clamp(0, height - 1)
        for fx in range(kernel_size // 2):
            x_left = (x0 - fx * dilation).long().clamp(0, width - 1)
            x_right = (x0 + (fx + 1) * dilation).long().clamp(0, width - 1)
            t_left = fx * dilation + alpha
            t_right = (1.0 + fx) * dilation - alpha
            t_top = fy * dilation + beta
            t_bot = (1.0 + fy) * dilation - beta
            p_left = torch.exp(_safe_div(-t_left * t_left, two_s2))
            p_right = torch.exp(_safe_div(-t_right * t_right, two_s2))
            p_top = torch.exp(_safe_div(-t_top * t_top, two_s2))
            p_bot = torch.exp(_safe_div(-t_bot * t_bot, two_s2))
            val = val + p_top * p_left * gather(y_top, x_left)
            val = val + p_top * p_right * gather(y_top, x_right)
            val = val + p_bot * p_left * gather(y_bot, x_left)
            val = val + p_bot * p_right * gather(y_bot, x_right)
            total = total + (p_top * p_left + p_top * p_right + p_bot * p_left + p_bot * p_right)
    return _safe_div(val, total)


def _resample2d_loop(input1, input2, kernel_size, dilation):
    """The kernel's per-pixel loop, literally (slow; for :func:`check_resample2d`)."""
    b, c, height, width = input1.shape
    h, w = input2.shape[-2:]
    out = np.zeros((b, c, h, w), dtype=np.float64)
    a, f = input1.double().numpy(), input2.double().numpy()
    for n in range(b):
        for ch in range(c):
            for y in range(h):
                for x in range(w):
                    dx, dy, sigma = f[n, 0, y, x], f[n, 1, y, x], f[n, 2, y, x]
                    xf, yf = x + dx, y + dy
                    alpha, beta = xf - math.floor(xf), yf - math.floor(yf)
                    val = total = 0.0
                    for fy in range(kernel_size // 2):
                        yt = max(min(int(math.floor(yf) - fy * dilation), height - 1), 0)
                        yb = max(min(int(math.floor(yf) + (fy + 1) * dilation), height - 1), 0)
                        for fx in range(kernel_size // 2):
                            xl = max(min(int(math.floor(xf) - fx * dilation), width - 1), 0)
                            xr = max(min(int(math.floor(xf) + (fx + 1) * dilation), width - 1), 0)
                            weight = [
                                math.exp(-((fx * dilation + alpha) ** 2) / (2 * sigma * sigma)),
                                math.exp(-(((1 + fx) * dilation - alpha) ** 2) / (2 * sigma**2)),
                                math.exp(-((fy * dilation + beta) ** 2) / (2 * sigma * sigma)),
                                math.exp(-(((1 + fy) * dilation - beta) ** 2) / (2 * sigma**2)),
                            ]
                            wl, wr, wt, wb = weight
                            val += wt * wl * a[n, ch, yt, xl] + wt * wr * a[n, ch, yt, xr]
                            val += wb * wl * a[n, ch, yb, xl] + wb * wr * a[n, ch, yb, xr]
                            total += wt * wl + wt * wr + wb * wl + wb * wr
                    out[n, ch, y, x] = val / total if total else val / _EPS
    return torch.from_numpy(out)


def check_resample2d() -> float:
    """Max |vectorised - per-pixel loop| on random inputs with flows beyond the border."""
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(2, 3, 7, 9, generator=gen)
    flow = torch.randn(2, 2, 7, 9, generator=gen) * 4.0
    worst = 0.0
    for k, sigma in ((4, 2.0), (16, 4.0)):
        params = torch.cat([flow, torch.full((2, 1, 7, 9), sigma)], dim=1)
        fast = resample2d_forward(feats, params, k, 1)
        slow = _resample2d_loop(feats, params, k, 1)
        worst = max(worst, float((fast.double() - slow).abs().max()))
    return worst


def install_resample2d_cpu() -> None:
    module = types.ModuleType("resample2d_cuda")

    def forward(input1, input2, output, kernel_size, dilation):
        output.copy_(resample2d_forward(input1, input2, int(kernel_size), int(dilation)))
        return 1

    def backward(*args, **kwargs):  # pragma: no cover - inference only
        raise NotImplementedError("the CPU resample2d shim is forward-only")

    module.forward = forward
    module.backward = backward
    sys.modules["resample2d_cuda"] = module
