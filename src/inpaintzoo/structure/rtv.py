"""Relative total variation (RTV) smoothing: StructureFlow's structure images, batched in torch.

Xu, Yan, Xia, Jia. "Structure Extraction from Texture via Relative Total Variation", SIGGRAPH
Asia 2012. StructureFlow precomputes its structure images with the authors' MATLAB ``tsmooth``
(official repo RenYurui/StructureFlow, ``scripts/matlab/generate_structure_images.m`` and
``scripts/matlab/code/tsmooth.m``) at ``lambda=0.015, sigma=3, sharpness=0.001, maxIter=3``
(``../shared/specs/structureflow.md`` section 2). The algorithm, per iteration:

1. forward differences ``fx, fy`` of the current estimate ``x`` (per channel, zero past the last
   column/row); ``w_to = 1 / max(mean_c sqrt(fx^2 + fy^2), sharpness)``;
2. the same differences of ``G_sigma * x`` (separable Gaussian, zero padding, kernel
   ``round(5 sigma)`` forced odd); ``w_tbx = 1 / max(mean_c |gfx|, 0.001)`` (``y`` likewise);
3. ``wx = w_tbx w_to`` (last column 0), ``wy = w_tby w_to`` (last row 0);
4. solve ``(I + lambda L(wx, wy)) S = I`` for every channel, where ``L`` is the five-point
   inhomogeneous Laplacian ``D_x^T diag(wx) D_x + D_y^T diag(wy) D_y`` and ``I`` the *input*;
5. ``sigma <- max(sigma / 2, 0.5)``.

``lambda`` is halved once at the start (as ``tsmooth`` does).

Two solvers for step 4 (``solver=``), both batched over all ``B x C`` systems, matrix-free:

* ``"official"`` (default): what ``tsmooth.m`` does. MATLAB ``pcg(A, b, 0.1, 100, L, L')``
  with ``L = ichol(A, struct('michol', 'on'))``: modified incomplete Cholesky with zero fill
  (MIC(0)), **zero initial guess**, stop at the first iteration with relative residual
  ``<= 0.1`` (at most 100 iterations), each channel on its own. The loose stop makes the answer
  depend on the preconditioner and start, so this follows them exactly: the MIC(0) factor of
  the five-point matrix is computed by its pivot recurrence (:class:`IncompleteCholesky`, equal
  to a generic right-looking MIC(0) in MATLAB's column-major order to 1e-15), the triangular
  solves run along anti-diagonals (``H + W - 1`` vectorised steps each). Computed in float64
  (MATLAB's precision; the stop is decided at the 0.1 threshold, and float32 flips an
  iteration count now and then, which moves uint8 pixels), float32 on MPS.
  Measured against the official repo's shipped ``example/*/*_tsmooth.*`` files
  (``benchmarks/rtv_vs_official.py``, ours written as ``imwrite`` does: uint8, JPEG quality 75
  for ``.jpg``), each with the parameters it was made with (5 of them used tsmooth's own
  ``sharpness=0.02, maxIter=4``, not the script's; see docs/methods/structureflow.md):
  **bit-exact on 8 of the 9** comparable examples (the ninth, paris/1, 48.6 dB).
* ``"exact"``: Jacobi-preconditioned CG, warm-started from the previous outer iterate, to a
  tight relative residual (``tol=1e-5``): the well-defined exact RTV solution (within ~2e-6 of
  scipy ``spsolve``), 40-49 dB from the same official files.

:func:`rtv_smooth_reference` is the straightforward scipy ``spsolve`` version (per image, per
channel) of the exact solution that the tests compare against.

Inputs/outputs: ``(B, C, H, W)`` floats in ``[0, 1]``. ``sigma`` is in **pixels** (3 at the
official 256 px): callers working at another image size scale it with the size.
:class:`RTVCache` stores results on disk keyed by the sha256 of the image bytes and the
parameters, the solver included (atomic writes).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "RTV_DEFAULTS",
    "RTV_DEFAULT_SOLVER",
    "RTV_SOLVERS",
    "IncompleteCholesky",
    "RTVCache",
    "RTVSolution",
    "gaussian_kernel_size",
    "rtv_smooth",
    "rtv_smooth_reference",
    "rtv_solve",
    "rtv_weights",
]

#: StructureFlow's MATLAB call ``tsmooth(I, 0.015, 3, 0.001, 3)``.
RTV_DEFAULTS: dict[str, float] = {"lam": 0.015, "sigma": 3.0, "sharpness": 0.001, "iterations": 3}

#: ``solver`` -> its default ``(tol, max_iter)``: tsmooth's ``pcg(.., 0.1, 100, ..)``, and the
#: tight exact solve.
RTV_SOLVERS: dict[str, tuple[float, int]] = {"official": (0.1, 100), "exact": (1e-5, 1000)}

#: The solver closest to the official MATLAB outputs (``benchmarks/rtv_vs_official.py``).
RTV_DEFAULT_SOLVER = "official"

_TEXTURE_EPS = 0.001  # tsmooth's ``vareps`` for the blurred (windowed) gradients


def _solver_settings(solver: str, tol: float | None, max_iter: int | None) -> tuple[float, int]:
    if solver not in RTV_SOLVERS:
        raise ValueError(f"rtv_smooth: unknown solver {solver!r}; use one of {sorted(RTV_SOLVERS)}")
    default_tol, default_iter = RTV_SOLVERS[solver]
    tol = default_tol if tol is None else float(tol)
    max_iter = default_iter if max_iter is None else int(max_iter)
    if not (tol > 0 and max_iter >= 1):
        raise ValueError(f"rtv_smooth: tol must be > 0 and max_iter >= 1, got {tol}, {max_iter}")
    return tol, max_iter


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
) -> tuple[torch.Tensor, int]:
    """Jacobi-preconditioned CG for all ``(B, C)`` systems at once: ``(solution, iterations)``.

    ``start``: initial guess (default ``rhs``); the previous outer iterate is a warm start. The
    largest relative residual is checked every 10 iterations.
    """
    diag = 1.0 + ax + ay + F.pad(ax[..., :, :-1], (1, 0)) + F.pad(ay[..., :-1, :], (0, 0, 1, 0))
    inv_diag = 1.0 / diag
    x = (rhs if start is None else start).clone()
    r = rhs - _apply(x, ax, ay)
    z = r * inv_diag
    p = z.clone()
    rz = (r * z).sum((-2, -1), keepdim=True)
    b_norm = rhs.flatten(2).norm(dim=2).clamp_min(1e-12)
    it = 0
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
    return x, it + 1


# ---------------------------------------------------------------- MIC(0)-preconditioned PCG
def _skew_index(h: int, w: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Index maps between an ``(H, W)`` image and its anti-diagonal ("skewed") layout.

    Skewed cell ``(s, q)`` holds pixel ``(s - q, q)`` (``s = p + q``, ``H + W - 1`` rows); cells
    outside the image read the extra element ``H W`` (a pad). The pixels above ``(s - 1, q)`` and
    left ``(s - 1, q - 1)`` of a cell sit in the previous skewed row, so a lexicographic
    triangular recurrence becomes ``H + W - 1`` vectorised steps.
    """
    s = torch.arange(h + w - 1, device=device).view(-1, 1)
    q = torch.arange(w, device=device).view(1, -1)
    p = s - q
    valid = (p >= 0) & (p < h)
    to_skew = torch.where(valid, p * w + q, torch.full_like(p, h * w))
    rows = torch.arange(h, device=device).view(-1, 1)
    from_skew = (rows + q) * w + q  # flat index of pixel (p, q) in the (H + W - 1, W) layout
    return to_skew, from_skew


def _to_skew(x: torch.Tensor, index: torch.Tensor, fill: float) -> torch.Tensor:
    flat = x.flatten(-2)
    pad = torch.full((*flat.shape[:-1], 1), fill, dtype=x.dtype, device=x.device)
    return torch.cat([flat, pad], -1)[..., index]


def _from_skew(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.flatten(-2)[..., index]


class IncompleteCholesky:
    """Zero-fill (modified) incomplete Cholesky ``M = (D + L) D^-1 (D + L)^T`` of the RTV matrix.

    ``A = I + D_x^T diag(ax) D_x + D_y^T diag(ay) D_y`` (``ax = lambda wx``, ``(B, 1, H, W)``);
    ``L`` is its strictly lower part: the couplings ``-ay`` to the pixel above and ``-ax`` to the
    pixel to the left. MATLAB's ``ichol`` factor is ``(D + L) D^-1/2``; its column-major order
    and this row-major order give the same factor, since every edge and every dropped fill pair
    has the same orientation (earlier pixel above / left) in both.

    ``modified=True`` is ``ichol(A, struct('michol', 'on'))`` (tsmooth.m): the fill that IC(0)
    drops when eliminating pixel ``k``, ``a_ik a_jk / d_k`` between its two later neighbours
    ``i = below``, ``j = right``, is subtracted from both their pivots, so ``M e = A e``
    (MATLAB's documented property). Pivot recurrence, ``u`` = pixel above, ``l`` = pixel left::

        d = a - ay_u (ax_u + ay_u) / d_u - ax_l (ax_l + ay_l) / d_l      # MIC(0)
        d = a - ay_u^2 / d_u - ax_l^2 / d_l                              # IC(0), modified=False

    ``M`` equals ``A`` on its off-diagonal pattern; ``M - A`` is non-zero only on the diagonal and
    at the dropped (below-left / above-right) pairs. Factor and solves run on anti-diagonals
    (``H + W - 1`` sequential steps, each vectorised over the batch and the diagonal).
    """

    def __init__(self, ax: torch.Tensor, ay: torch.Tensor, modified: bool = True) -> None:
        h, w = ax.shape[-2:]
        self.to_skew, self.from_skew = _skew_index(h, w, ax.device)
        sx = _to_skew(ax, self.to_skew, 0.0)  # (B, 1, S, W); zero outside the image
        sy = _to_skew(ay, self.to_skew, 0.0)
        diag = 1.0 + ax + ay + F.pad(ax[..., :, :-1], (1, 0)) + F.pad(ay[..., :-1, :], (0, 0, 1, 0))
        sa = _to_skew(diag, self.to_skew, 1.0)
        gx = (sx + sy) if modified else sx  # what a left neighbour's coupling is multiplied by
        gy = (sx + sy) if modified else sy
        inv_d = torch.empty_like(sa)
        t_up = torch.zeros_like(sa[..., 0, :])  # ay (ax + ay) / d of the previous skewed row
        t_left = torch.zeros_like(t_up)  # ax (ax + ay) / d of the previous skewed row
        for s in range(sa.shape[-2]):
            d = sa[..., s, :] - t_up - F.pad(t_left[..., :-1], (1, 0))
            inv = 1.0 / d
            inv_d[..., s, :] = inv
            t_up = sy[..., s, :] * gy[..., s, :] * inv
            t_left = sx[..., s, :] * gx[..., s, :] * inv
        self.inv_d = inv_d
        # forward sweep (D + L) u = r:  u = r / d + (ay_u / d) u_u + (ax_l / d) u_l
        self.fwd_up = F.pad(sy[..., :-1, :], (0, 0, 1, 0)) * inv_d
        self.fwd_left = F.pad(sx[..., :-1, :-1], (1, 0, 1, 0)) * inv_d
        # backward sweep (D + L^T) z = D u:  z = u + (ay / d) z_below + (ax / d) z_right
        self.bwd_down = sy * inv_d
        self.bwd_right = sx * inv_d

    def pivots(self) -> torch.Tensor:
        """The pivots ``d`` in image layout, ``(B, 1, H, W)``."""
        return 1.0 / _from_skew(self.inv_d, self.from_skew)

    def solve(self, r: torch.Tensor) -> torch.Tensor:
        """``M^-1 r`` for ``r`` ``(B, C, H, W)`` (``B`` as the factor's, or 1 in the factor)."""
        rs = _to_skew(r, self.to_skew, 0.0) * self.inv_d
        n_s, w = rs.shape[-2:]
        shape = torch.broadcast_shapes(rs.shape[:-2], self.inv_d.shape[:-2])
        # skewed row s lives in u[s + 1]; row 0 / column 0: the zeros above / left of the image
        u = rs.new_zeros((*shape, n_s + 1, w + 1))
        tmp = rs.new_empty((*shape, w))
        for s in range(n_s):
            prev = u[..., s, :]
            torch.addcmul(rs[..., s, :], self.fwd_up[..., s, :], prev[..., 1:], out=tmp)
            torch.addcmul(tmp, self.fwd_left[..., s, :], prev[..., :-1], out=u[..., s + 1, 1:])
        z = rs.new_zeros((*shape, n_s + 1, w + 1))  # row S / column W: zeros below / right
        for s in range(n_s - 1, -1, -1):
            nxt = z[..., s + 1, :]
            torch.addcmul(u[..., s + 1, 1:], self.bwd_down[..., s, :], nxt[..., :-1], out=tmp)
            torch.addcmul(tmp, self.bwd_right[..., s, :], nxt[..., 1:], out=z[..., s, :-1])
        return _from_skew(z[..., :-1, :-1], self.from_skew)


class RTVSolution(NamedTuple):
    """:func:`rtv_solve`'s result: ``x`` ``(B, C, H, W)``; ``iterations``, ``relres`` ``(B, C)``."""

    x: torch.Tensor
    iterations: torch.Tensor
    relres: torch.Tensor


def _ic_pcg(
    rhs: torch.Tensor, ax: torch.Tensor, ay: torch.Tensor, tol: float, max_iter: int
) -> RTVSolution:
    """MATLAB ``pcg(A, b, tol, max_iter, L, L')``, ``L = ichol(A, michol on)``, all at once.

    As MATLAB's ``pcg`` (documented behaviour): start from ``x = 0``; per iteration one
    preconditioner solve and one product; a system stops at the first iteration whose residual
    ``||b - A x|| <= tol ||b||`` (the recursive residual, confirmed by the true one); one that
    never gets there returns its iterate with the smallest residual. Each ``(B, C)`` system stops
    on its own (a stopped one is frozen while the others go on).
    """
    prec = IncompleteCholesky(ax, ay, modified=True)
    b_norm = rhs.flatten(2).norm(dim=2)[..., None, None]
    tolb = tol * b_norm
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    normr = b_norm.clone()
    active = normr > tolb  # an all-zero right-hand side is solved by x = 0
    iterations = torch.zeros_like(b_norm, dtype=torch.long)
    x_min, normr_min = x.clone(), normr.clone()
    p = rho_old = None
    for it in range(1, int(max_iter) + 1):
        if not bool(active.any()):
            break
        z = prec.solve(r)
        rho = (r * z).sum((-2, -1), keepdim=True)
        p = z if p is None else z + (rho / rho_old) * p
        q = _apply(p, ax, ay)
        alpha = rho / (p * q).sum((-2, -1), keepdim=True)
        x = torch.where(active, x + alpha * p, x)
        r = torch.where(active, r - alpha * q, r)
        normr = torch.where(active, r.flatten(2).norm(dim=2)[..., None, None], normr)
        iterations = torch.where(active, torch.full_like(iterations, it), iterations)
        check = active & (normr <= tolb)
        if bool(check.any()):
            true_norm = (rhs - _apply(x, ax, ay)).flatten(2).norm(dim=2)[..., None, None]
            normr = torch.where(check, true_norm, normr)
            active = active & ~(check & (true_norm <= tolb))
        better = active & (normr < normr_min)
        x_min = torch.where(better, x, x_min)
        normr_min = torch.where(better, normr, normr_min)
        rho_old = rho
    x = torch.where(active, x_min, x)
    relres = torch.where(active, normr_min, normr) / b_norm.clamp_min(1e-300)
    return RTVSolution(x, iterations[..., 0, 0], relres[..., 0, 0])


def _work_dtype(image: torch.Tensor, solver: str) -> torch.dtype:
    if solver == "official" and image.device.type != "mps":
        return torch.float64  # MATLAB's precision: the 0.1 stop decides iteration counts
    return torch.float64 if image.dtype == torch.float64 else torch.float32


@torch.no_grad()
def rtv_solve(
    rhs: torch.Tensor,
    ax: torch.Tensor,
    ay: torch.Tensor,
    solver: str = RTV_DEFAULT_SOLVER,
    tol: float | None = None,
    max_iter: int | None = None,
    start: torch.Tensor | None = None,
) -> RTVSolution:
    """Solve ``(I + D_x^T ax D_x + D_y^T ay D_y) x = rhs`` for every ``(B, C)`` system.

    Args:
        rhs: ``(B, C, H, W)``.
        ax, ay: ``(B, 1, H, W)`` edge weights (``lambda wx``, ``lambda wy``; last column of ``ax``
            and last row of ``ay`` ignored, treated as 0).
        solver: ``"official"`` (MIC(0)-PCG from ``x = 0``, tsmooth's ``pcg``) or ``"exact"``
            (Jacobi-PCG to a tight residual, warm start ``start``).
        tol, max_iter: stopping rule; ``None`` = the solver's default (:data:`RTV_SOLVERS`).
        start: initial guess for ``"exact"`` (default ``rhs``); ``"official"`` always starts at 0.

    Returns:
        :class:`RTVSolution` ``(x, iterations, relres)``; ``relres = ||rhs - A x|| / ||rhs||``
        per system. For ``"exact"``, ``iterations`` is the shared iteration count.
    """
    tol, max_iter = _solver_settings(solver, tol, max_iter)
    ax = ax.clone()
    ay = ay.clone()
    ax[..., :, -1] = 0.0
    ay[..., -1, :] = 0.0
    if solver == "official":
        return _ic_pcg(rhs, ax, ay, tol, max_iter)
    x, iterations = _pcg(rhs, ax, ay, tol, max_iter, start=start)
    relres = (rhs - _apply(x, ax, ay)).flatten(2).norm(dim=2) / rhs.flatten(2).norm(
        dim=2
    ).clamp_min(1e-30)
    return RTVSolution(x, torch.full_like(relres, iterations, dtype=torch.long), relres)


@torch.no_grad()
def rtv_smooth(
    image: torch.Tensor,
    lam: float = RTV_DEFAULTS["lam"],
    sigma: float = RTV_DEFAULTS["sigma"],
    sharpness: float = RTV_DEFAULTS["sharpness"],
    iterations: int = int(RTV_DEFAULTS["iterations"]),
    tol: float | None = None,
    max_iter: int | None = None,
    solver: str = RTV_DEFAULT_SOLVER,
) -> torch.Tensor:
    """RTV structure image of a batch (Xu et al. 2012 as in StructureFlow's ``tsmooth``).

    Args:
        image: ``(B, C, H, W)`` in ``[0, 1]`` (any C; the weights average over channels).
        lam, sigma, sharpness, iterations: tsmooth's parameters (StructureFlow: 0.015, 3,
            0.001, 3); ``lam`` is halved inside, as tsmooth does. ``sigma`` (the texture scale,
            and the Gaussian window ``round(5 sigma) | 1``) is in **pixels**: StructureFlow's 3
            is for its 256 px images, so a caller at another size passes ``sigma * size / 256``
            (StructureFlow: ``sigma * structure_scale``). ``lam`` and ``sharpness`` are
            size-free.
        tol, max_iter: the linear solve's stopping rule; ``None`` = the solver's default
            (``"official"``: relative residual 0.1, 100 iterations, as tsmooth; ``"exact"``:
            1e-5, 1000, checked every 10 iterations).
        solver: ``"official"`` (default; tsmooth's MIC(0)-preconditioned ``pcg`` from zero,
            stopped at the loose residual: matches the official MATLAB outputs, see the module
            docstring) or ``"exact"`` (Jacobi-PCG to a tight residual: the exact RTV solution).

    Returns:
        ``(B, C, H, W)`` smoothed image in the input's dtype (``"official"`` computes in float64,
        ``"exact"`` in float32 at least). Not differentiable (``no_grad``).
    """
    if image.ndim != 4:
        raise ValueError(f"rtv_smooth expects (B, C, H, W), got {tuple(image.shape)}")
    if min(image.shape[-2:]) < 2:
        raise ValueError(f"rtv_smooth needs H, W >= 2, got {tuple(image.shape)}")
    if not (lam > 0 and sigma > 0 and sharpness > 0 and iterations >= 1):
        raise ValueError("rtv_smooth: lam, sigma, sharpness must be > 0 and iterations >= 1")
    tol, max_iter = _solver_settings(solver, tol, max_iter)
    dtype = image.dtype
    source = image.to(_work_dtype(image, solver))
    x = source
    lam_half = lam / 2.0
    sigma_iter = float(sigma)
    for _ in range(int(iterations)):
        wx, wy = rtv_weights(x, sigma_iter, sharpness)
        x = rtv_solve(source, lam_half * wx, lam_half * wy, solver, tol, max_iter, start=x).x
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
    storing (atomically: temp file + rename) only the images not yet in ``root``. The parameters
    in the key are :func:`rtv_smooth`'s, resolved: ``lam, sigma, sharpness, iterations``, the
    ``solver`` and its effective ``tol`` / ``max_iter``, so results of different solvers (or of
    the default solver before and after a change of default) never share an entry.
    """

    def __init__(self, root: str | Path, **params: float | str) -> None:
        unknown = set(params) - set(RTV_DEFAULTS) - {"tol", "max_iter", "solver"}
        if unknown:
            raise ValueError(f"RTVCache: unknown parameter(s) {sorted(unknown)}")
        self.root = Path(root)
        merged: dict[str, float | str] = {**RTV_DEFAULTS, "solver": RTV_DEFAULT_SOLVER, **params}
        tol, max_iter = _solver_settings(
            str(merged["solver"]),
            merged.get("tol"),  # type: ignore[arg-type]
            merged.get("max_iter"),  # type: ignore[arg-type]
        )
        merged["tol"], merged["max_iter"] = tol, max_iter
        self.params = merged

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
