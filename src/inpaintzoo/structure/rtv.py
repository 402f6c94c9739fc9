"""Relative total variation (RTV) smoothing: StructureFlow's structure images, batched in torch.

Xu, Yan, Xia, Jia. "Structure Extraction from Texture via Relative Total Variation", SIGGRAPH
Asia 2012. StructureFlow precomputes its structure images with the authors' MATLAB ``tsmooth``
(``scripts/matlab/generate_structure_images.m``) at ``lambda=0.015, sigma=3, sharpness=0.001,
maxIter=3`` (``../shared/specs/structureflow.md`` section 2). The algorithm, per iteration:

1. forward differences ``fx, fy`` of the current estimate ``x`` (per channel, zero past the last
   column/row); ``w_to = 1 / max(mean_c sqrt(fx^2 + fy^2), sharpness)``;
2. the same differences of ``G_sigma * x`` (separable Gaussian, zero padding, kernel
   ``round(5 sigma)`` forced odd); ``w_tbx = 1 / max(mean_c |gfx|, 0.001)`` (``y`` likewise);
3. ``wx = w_tbx w_to`` (last column 0), ``wy = w_tby w_to`` (last row 0);
4. solve ``(I + lambda L(wx, wy)) S = I`` for every channel, where ``L`` is the five-point
   inhomogeneous Laplacian ``D_x^T diag(wx) D_x + D_y^T diag(wy) D_y`` and ``I`` the *input*;
5. ``sigma <- max(sigma / 2, 0.5)``.

``lambda`` is halved once at the start (as ``tsmooth`` does).

Solver: the matrix is symmetric positive definite and shared by the channels of an image, so
:func:`rtv_smooth` runs **Jacobi-preconditioned conjugate gradients** on all ``B x C`` systems at
once with matrix-free stencil products (no sparse matrices, any device). MATLAB stops its
IC-preconditioned PCG at a loose relative residual of 0.1 (at most 100 iterations), which makes its
answer depend on the preconditioner; here the systems are solved to ``tol`` (default ``1e-5``
relative residual, which puts the result within ``~1e-3`` of the exact solution), i.e. towards the
well-defined exact RTV solution. :func:`rtv_smooth_reference` is the straightforward
scipy ``spsolve`` version (per image, per channel) that the tests compare against.

Inputs/outputs: ``(B, C, H, W)`` floats in ``[0, 1]``. :class:`RTVCache` stores results on disk
keyed by the sha256 of the image bytes and the parameters (atomic writes).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "RTV_DEFAULTS",
    "RTVCache",
    "gaussian_kernel_size",
    "rtv_smooth",
    "rtv_smooth_reference",
    "rtv_weights",
]

#: StructureFlow's MATLAB call ``tsmooth(I, 0.015, 3, 0.001, 3)``.
RTV_DEFAULTS: dict[str, float] = {"lam": 0.015, "sigma": 3.0, "sharpness": 0.001, "iterations": 3}

_TEXTURE_EPS = 0.001  # tsmooth's ``vareps`` for the blurred (windowed) gradients


def gaussian_kernel_size(sigma: float) -> int:
    """``bitor(round(5 sigma), 1)`` as in tsmooth (MATLAB ``round`` is half away from zero)."""
    return int(math.floor(5.0 * sigma + 0.5)) | 1


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian, zero padding, ``same`` size (MATLAB ``conv2(.., 'same')``)."""
    k = gaussian_kernel_size(sigma)
    r = (k - 1) / 2.0
    t = torch.arange(k, dtype=x.dtype, device=x.device) - r
    g = torch.exp(-(t**2) / (2.0 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    pad = k // 2
    x = F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), padding=(0, pad), groups=c)
    return F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), padding=(pad, 0), groups=c)


def _diff_x(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x[..., :, 1:] - x[..., :, :-1], (0, 1))


def _diff_y(x: torch.Tensor) -> torch.Tensor:
    return F.pad(x[..., 1:, :] - x[..., :-1, :], (0, 0, 0, 1))


def rtv_weights(
    x: torch.Tensor, sigma: float, sharpness: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Texture weights ``(wx, wy)``, each ``(B, 1, H, W)``, for the current estimate ``x``."""
    fx, fy = _diff_x(x), _diff_y(x)
    w_to = 1.0 / torch.sqrt(fx**2 + fy**2).mean(1, keepdim=True).clamp_min(sharpness)
    blurred = _gaussian_blur(x, sigma)
    w_tbx = 1.0 / _diff_x(blurred).abs().mean(1, keepdim=True).clamp_min(_TEXTURE_EPS)
    w_tby = 1.0 / _diff_y(blurred).abs().mean(1, keepdim=True).clamp_min(_TEXTURE_EPS)
    wx = w_tbx * w_to
    wy = w_tby * w_to
    wx[..., :, -1] = 0.0
    wy[..., -1, :] = 0.0
    return wx, wy


def _apply(s: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor) -> torch.Tensor:
    """``(I + D_x^T ax D_x + D_y^T ay D_y) s`` with ``ax = lambda wx`` (last col 0)."""
    fx = ax * _diff_x(s)  # flux between (i, j) and (i, j+1); zero at the last column
    fy = ay * _diff_y(s)
    # D^T v (j) = v(j-1) - v(j)
    div_x = F.pad(fx[..., :, :-1], (1, 0)) - fx
    div_y = F.pad(fy[..., :-1, :], (0, 0, 1, 0)) - fy
    return s + div_x + div_y


def _pcg(
    rhs: torch.Tensor,
    ax: torch.Tensor,
    ay: torch.Tensor,
    tol: float,
    max_iter: int,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """Jacobi-preconditioned CG for all ``(B, C)`` systems at once; returns the solution.

    ``start``: initial guess (default ``rhs``); the previous outer iterate is a warm start.
    """
    diag = 1.0 + ax + ay + F.pad(ax[..., :, :-1], (1, 0)) + F.pad(ay[..., :-1, :], (0, 0, 1, 0))
    inv_diag = 1.0 / diag
    x = (rhs if start is None else start).clone()
    r = rhs - _apply(x, ax, ay)
    z = r * inv_diag
    p = z.clone()
    rz = (r * z).sum((-2, -1), keepdim=True)
    b_norm = rhs.flatten(2).norm(dim=2).clamp_min(1e-12)
    for it in range(max_iter):
        ap = _apply(p, ax, ay)
        alpha = rz / (p * ap).sum((-2, -1), keepdim=True).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        if it % 10 == 9 and float((r.flatten(2).norm(dim=2) / b_norm).max()) < tol:
            break
        z = r * inv_diag
        rz_new = (r * z).sum((-2, -1), keepdim=True)
        p = z + (rz_new / rz.clamp_min(1e-30)) * p
        rz = rz_new
    return x


@torch.no_grad()
def rtv_smooth(
    image: torch.Tensor,
    lam: float = RTV_DEFAULTS["lam"],
    sigma: float = RTV_DEFAULTS["sigma"],
    sharpness: float = RTV_DEFAULTS["sharpness"],
    iterations: int = int(RTV_DEFAULTS["iterations"]),
    tol: float = 1e-5,
    max_iter: int = 1000,
) -> torch.Tensor:
    """RTV structure image of a batch (Xu et al. 2012 as in StructureFlow's ``tsmooth``).

    Args:
        image: ``(B, C, H, W)`` in ``[0, 1]`` (any C; the weights average over channels).
        lam, sigma, sharpness, iterations: tsmooth's parameters (StructureFlow: 0.015, 3,
            0.001, 3); ``lam`` is halved inside, as tsmooth does.
        tol: relative residual at which CG stops (checked every 10 iterations).
        max_iter: CG iteration cap per outer iteration.

    Returns:
        ``(B, C, H, W)`` smoothed image (float32 or float64 as the input; computed in float32
        at least). Not differentiable (``no_grad``).
    """
    if image.ndim != 4:
        raise ValueError(f"rtv_smooth expects (B, C, H, W), got {tuple(image.shape)}")
    if min(image.shape[-2:]) < 2:
        raise ValueError(f"rtv_smooth needs H, W >= 2, got {tuple(image.shape)}")
    if not (lam > 0 and sigma > 0 and sharpness > 0 and iterations >= 1):
        raise ValueError("rtv_smooth: lam, sigma, sharpness must be > 0 and iterations >= 1")
    dtype = image.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    source = image.to(work)
    x = source
    lam_half = lam / 2.0
    sigma_iter = float(sigma)
    for _ in range(int(iterations)):
        wx, wy = rtv_weights(x, sigma_iter, sharpness)
        x = _pcg(source, lam_half * wx, lam_half * wy, tol, max_iter, start=x)
        sigma_iter = max(sigma_iter / 2.0, 0.5)
    return x.to(dtype)


def rtv_smooth_reference(
    image: np.ndarray,
    lam: float = RTV_DEFAULTS["lam"],
    sigma: float = RTV_DEFAULTS["sigma"],
    sharpness: float = RTV_DEFAULTS["sharpness"],
    iterations: int = int(RTV_DEFAULTS["iterations"]),
) -> np.ndarray:
    """Straightforward RTV for one ``(H, W, C)`` float64 image: scipy sparse matrix + spsolve.

    Independent of :func:`rtv_smooth` (numpy/scipy filtering, explicit sparse matrix, direct
    solve); used to check it.
    """
    from scipy import ndimage, sparse
    from scipy.sparse.linalg import spsolve

    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    h, w, c = img.shape
    x = img.copy()
    lam_half = lam / 2.0
    sigma_iter = float(sigma)
    n = h * w
    idx = np.arange(n).reshape(h, w)
    for _ in range(int(iterations)):
        fx = np.zeros_like(x)
        fx[:, :-1] = x[:, 1:] - x[:, :-1]
        fy = np.zeros_like(x)
        fy[:-1] = x[1:] - x[:-1]
        w_to = 1.0 / np.maximum(np.sqrt(fx**2 + fy**2).mean(2), sharpness)
        k = gaussian_kernel_size(sigma_iter)
        t = np.arange(k) - (k - 1) / 2.0
        g = np.exp(-(t**2) / (2 * sigma_iter**2))
        g /= g.sum()
        blurred = ndimage.convolve1d(x, g, axis=1, mode="constant")
        blurred = ndimage.convolve1d(blurred, g, axis=0, mode="constant")
        gfx = np.zeros_like(x)
        gfx[:, :-1] = blurred[:, 1:] - blurred[:, :-1]
        gfy = np.zeros_like(x)
        gfy[:-1] = blurred[1:] - blurred[:-1]
        wx = w_to / np.maximum(np.abs(gfx).mean(2), _TEXTURE_EPS)
        wy = w_to / np.maximum(np.abs(gfy).mean(2), _TEXTURE_EPS)
        wx[:, -1] = 0.0
        wy[-1, :] = 0.0
        ex = (lam_half * wx)[:, :-1].ravel()  # edges (i, j) - (i, j+1)
        ey = (lam_half * wy)[:-1, :].ravel()  # edges (i, j) - (i+1, j)
        a, b = idx[:, :-1].ravel(), idx[:, 1:].ravel()
        cc, d = idx[:-1, :].ravel(), idx[1:, :].ravel()
        rows = np.concatenate([a, b, cc, d, a, b, cc, d])
        cols = np.concatenate([b, a, d, cc, a, b, cc, d])
        vals = np.concatenate([-ex, -ex, -ey, -ey, ex, ex, ey, ey])
        laplacian = sparse.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsc()
        system = (sparse.identity(n, format="csc") + laplacian).tocsc()
        x = np.stack([spsolve(system, img[..., ch].ravel()).reshape(h, w) for ch in range(c)], 2)
        sigma_iter = max(sigma_iter / 2.0, 0.5)
    return x


class RTVCache:
    """On-disk cache of RTV results keyed by ``sha256(image bytes, shape, dtype, parameters)``.

    ``cache(image)`` with ``image`` ``(B, C, H, W)`` returns the smoothed batch, computing and
    storing (atomically: temp file + rename) only the images not yet in ``root``.
    """

    def __init__(self, root: str | Path, **params: float) -> None:
        unknown = set(params) - set(RTV_DEFAULTS) - {"tol", "max_iter"}
        if unknown:
            raise ValueError(f"RTVCache: unknown parameter(s) {sorted(unknown)}")
        self.root = Path(root)
        self.params = {**RTV_DEFAULTS, **params}

    def key(self, image: torch.Tensor) -> str:
        """Hex digest of one ``(C, H, W)`` image and the parameters."""
        array = image.detach().cpu().contiguous().numpy()
        digest = hashlib.sha256()
        digest.update(array.tobytes())
        digest.update(json.dumps([list(array.shape), str(array.dtype)]).encode())
        digest.update(json.dumps(self.params, sort_keys=True).encode())
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        from inpaintzoo.utils.io import atomic_save_torch

        if image.ndim != 4:
            raise ValueError(f"RTVCache expects (B, C, H, W), got {tuple(image.shape)}")
        keys = [self.key(im) for im in image]
        out: list[torch.Tensor | None] = []
        for key in keys:
            path = self.path(key)
            out.append(torch.load(path, weights_only=True) if path.is_file() else None)
        todo = [i for i, v in enumerate(out) if v is None]
        if todo:
            smoothed = rtv_smooth(image[todo], **self.params)  # type: ignore[arg-type]
            for j, i in enumerate(todo):
                value = smoothed[j].detach().cpu().clone()
                atomic_save_torch(value, self.path(keys[i]))
                out[i] = value
        return torch.stack([v.to(image.device, image.dtype) for v in out])  # type: ignore[union-attr]
