"""RTV smoothing: the two batched solvers ("official" MIC(0)-PCG as tsmooth.m, "exact"
Jacobi-PCG) against explicit numpy/scipy versions, their defining properties, the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import embedded_batch
from inpaintzoo.structure.rtv import (
    RTV_DEFAULT_SOLVER,
    IncompleteCholesky,
    RTVCache,
    gaussian_kernel_size,
    rtv_smooth,
    rtv_smooth_reference,
    rtv_solve,
    rtv_weights,
)


@pytest.fixture(scope="module")
def photos():
    return embedded_batch(n=2, size=64, seed=3)["image"]


def _tv(x: torch.Tensor) -> float:
    return float(
        (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean()
    )


def test_kernel_size_follows_tsmooth_rule():
    # bitor(round(5 sigma), 1), MATLAB round (half away from zero)
    assert [gaussian_kernel_size(s) for s in (3.0, 1.5, 0.75, 0.5)] == [15, 9, 5, 3]


def test_exact_solver_matches_scipy_spsolve_reference_on_embedded_photos(photos):
    """Official parameters (0.015, 3, 0.001, 3 iterations) on two 64 px photos: the batched
    Jacobi-PCG result is within 1e-4 (max abs, [0,1] scale) of the direct sparse solve
    (measured ~5e-6 at the default tol 1e-5)."""
    ours = rtv_smooth(photos, solver="exact")
    for i in range(len(photos)):
        ref = rtv_smooth_reference(photos[i].permute(1, 2, 0).double().numpy())
        ref_t = torch.from_numpy(ref).permute(2, 0, 1).float()
        assert (ours[i] - ref_t).abs().max() < 1e-4
    # and it really smooths: texture (total variation) drops a lot, colours stay put
    assert _tv(ours) < 0.6 * _tv(photos)
    assert (ours.mean((-2, -1)) - photos.mean((-2, -1))).abs().max() < 0.02


@pytest.mark.parametrize("solver", ["official", "exact"])
def test_constant_image_is_a_fixed_point(solver):
    x = torch.full((1, 3, 20, 24), 0.3)
    assert torch.allclose(rtv_smooth(x, solver=solver), x, atol=1e-6)


def test_step_edge_survives_while_fine_texture_is_removed():
    torch.manual_seed(0)
    img = torch.zeros(1, 1, 32, 32)
    img[..., 16:] = 1.0  # a strong structure edge
    texture = 0.08 * torch.sign(torch.randn(1, 1, 32, 32))
    out = rtv_smooth((img + texture).clamp(0, 1))
    left, right = out[..., 4:28, 2:12], out[..., 4:28, 20:30]
    assert float(right.mean() - left.mean()) > 0.8  # the edge keeps its contrast
    assert float(left.std()) < 0.5 * 0.08 and float(right.std()) < 0.5 * 0.08  # texture gone


def test_weights_zero_at_the_last_column_and_row():
    wx, wy = rtv_weights(torch.rand(2, 3, 10, 12), 3.0, 0.001)
    assert wx.shape == (2, 1, 10, 12) and torch.all(wx[..., -1] == 0)
    assert torch.all(wy[..., -1, :] == 0) and torch.all(wx[..., :-1] > 0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        rtv_smooth(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="lam"):
        rtv_smooth(torch.rand(1, 3, 8, 8), lam=0.0)
    with pytest.raises(ValueError, match="unknown parameter"):
        RTVCache("/tmp/x", lambd=1)


def test_cache_round_trip_and_reuse(tmp_path, monkeypatch):
    images = torch.rand(2, 3, 16, 16)
    cache = RTVCache(tmp_path, iterations=1)
    first = cache(images)
    files = sorted(tmp_path.rglob("*.pt"))
    assert len(files) == 2 and not list(tmp_path.rglob("*.tmp"))
    assert torch.allclose(first, rtv_smooth(images, iterations=1))

    import inpaintzoo.structure.rtv as rtv

    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached image")

    monkeypatch.setattr(rtv, "rtv_smooth", boom)
    again = cache(images)
    assert torch.equal(again, first)
    # other parameters -> other keys
    assert RTVCache(tmp_path, iterations=2).key(images[0]) != cache.key(images[0])
    assert np.isfinite(again.numpy()).all()


def test_cache_key_includes_the_solver_and_its_resolved_tolerance(tmp_path):
    image = torch.rand(3, 16, 16)
    default = RTVCache(tmp_path)
    official = RTVCache(tmp_path, solver="official")
    exact = RTVCache(tmp_path, solver="exact")
    assert RTV_DEFAULT_SOLVER == "official" and default.params["solver"] == "official"
    # the default solver spelled out or not is the same entry; its tol/max_iter are in the key
    assert default.key(image) == official.key(image)
    assert (official.params["tol"], official.params["max_iter"]) == (0.1, 100)
    assert RTVCache(tmp_path, solver="official", tol=0.1).key(image) == official.key(image)
    assert RTVCache(tmp_path, solver="official", tol=0.01).key(image) != official.key(image)
    keys = {official.key(image), exact.key(image)}
    assert len(keys) == 2
    # and the cached values are the solver's
    batch = image[None]
    assert torch.equal(exact(batch), rtv_smooth(batch, solver="exact"))
    assert torch.equal(official(batch), rtv_smooth(batch, solver="official"))
    assert len(list(tmp_path.rglob("*.pt"))) == 2
    with pytest.raises(ValueError, match="unknown solver 'ichol'"):
        RTVCache(tmp_path, solver="ichol")


# ----------------------------------------------------------------- the "official" solver


def _dense_rtv_matrix(ax: np.ndarray, ay: np.ndarray) -> np.ndarray:
    """``I + sum over edges of a (e_i - e_j)(e_i - e_j)^T``, row-major pixel order."""
    h, w = ax.shape
    a = np.eye(h * w)
    for p in range(h):
        for q in range(w):
            k = p * w + q
            for weight, j in ((ax[p, q], k + 1 if q + 1 < w else None), (ay[p, q], k + w)):
                if j is None or j >= h * w:
                    continue
                a[k, k] += weight
                a[j, j] += weight
                a[k, j] -= weight
                a[j, k] -= weight
    return a


def _generic_incomplete_cholesky(a: np.ndarray, order: np.ndarray, modified: bool) -> np.ndarray:
    """Textbook right-looking IC(0) / MIC(0) (dropped fill moved onto both diagonals) in the
    given elimination order; returns ``M = L L^T`` in the original order."""
    a = a[np.ix_(order, order)].copy()
    n = len(a)
    pattern = a != 0
    lower = np.zeros_like(a)
    for k in range(n):
        lower[k, k] = np.sqrt(a[k, k])
        below = [i for i in range(k + 1, n) if pattern[i, k]]
        for i in below:
            lower[i, k] = a[i, k] / lower[k, k]
        for i in below:
            for j in below:
                if j > i:
                    continue
                update = lower[i, k] * lower[j, k]
                if pattern[i, j]:
                    a[i, j] -= update
                    a[j, i] = a[i, j]
                elif modified:
                    a[i, i] -= update
                    a[j, j] -= update
    back = np.argsort(order)
    return (lower @ lower.T)[np.ix_(back, back)]


@pytest.fixture(scope="module")
def small_weights():
    gen = torch.Generator().manual_seed(4)
    h, w = 5, 7
    ax = torch.rand(1, 1, h, w, generator=gen, dtype=torch.float64) * 3
    ay = torch.rand(1, 1, h, w, generator=gen, dtype=torch.float64) * 3
    ax[..., :, -1] = 0.0
    ay[..., -1, :] = 0.0
    return ax, ay


@pytest.mark.parametrize("modified", [True, False])
def test_incomplete_cholesky_is_matlab_ichol_nofill(small_weights, modified):
    """The anti-diagonal pivot recurrence equals a textbook IC(0)/MIC(0) elimination in both
    MATLAB's column-major and the row-major order; MIC keeps row sums (M e = A e, MATLAB's
    michol property); M = A on A's off-diagonal pattern; M^-1 is applied exactly."""
    ax, ay = small_weights
    h, w = ax.shape[-2:]
    a = _dense_rtv_matrix(ax[0, 0].numpy(), ay[0, 0].numpy())
    ic = IncompleteCholesky(ax, ay, modified=modified)
    d = ic.pivots().flatten().numpy()
    strict_lower = np.tril(a, -1)
    m = (np.diag(d) + strict_lower) @ np.diag(1 / d) @ (np.diag(d) + strict_lower).T
    column_major = np.arange(h * w).reshape(h, w).T.ravel()
    for order in (column_major, np.arange(h * w)):
        assert np.abs(m - _generic_incomplete_cholesky(a, order, modified)).max() < 1e-12
    off = (a != 0) & ~np.eye(h * w, dtype=bool)
    assert np.abs((m - a)[off]).max() < 1e-12
    dropped = (np.abs(m - a) > 1e-12) & ~np.eye(h * w, dtype=bool)
    assert dropped.any()  # fill really was dropped ...
    rows, cols = np.nonzero(dropped)  # ... only between below-left / above-right neighbours
    assert set(np.abs(rows - cols).tolist()) == {w - 1}
    if modified:
        assert np.abs(m.sum(1) - a.sum(1)).max() < 1e-12
    else:
        assert np.abs(np.diag(m) - np.diag(a)).max() < 1e-12
        assert np.abs(m.sum(1) - a.sum(1)).max() > 1e-3
    r = torch.rand(2, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    wide = IncompleteCholesky(ax.expand(2, 1, h, w), ay.expand(2, 1, h, w), modified=modified)
    z = wide.solve(r).reshape(6, h * w).numpy()
    assert np.abs(z - np.linalg.solve(m, r.reshape(6, h * w).numpy().T).T).max() < 1e-12


def test_official_solve_stops_at_the_first_iterate_below_the_relative_residual(small_weights):
    """tsmooth's pcg(A, b, 0.1, 100, L, L'): from x = 0, each (B, C) system stops at the first
    iteration with ||b - A x|| <= 0.1 ||b||: the reported residual is the true one and is
    <= 0.1, one iteration fewer is still above it. Iteration 1 is the preconditioned steepest
    descent step from 0: x = (b'z / z'Az) z with z = M^-1 b."""
    ax, ay = small_weights
    h, w = ax.shape[-2:]
    gen = torch.Generator().manual_seed(2)
    ax2, ay2 = 40 * ax.expand(2, 1, h, w).clone(), 40 * ay.expand(2, 1, h, w).clone()
    ay2[1] *= 0.01  # a second, easier system
    b = torch.rand(2, 3, h, w, dtype=torch.float64, generator=gen)
    sol = rtv_solve(b, ax2, ay2, solver="official")
    assert sol.iterations.shape == (2, 3) and sol.relres.shape == (2, 3)
    assert int(sol.iterations.min()) >= 2 and len(set(sol.iterations.flatten().tolist())) > 1
    for i in range(2):
        a = _dense_rtv_matrix(ax2[i, 0].numpy(), ay2[i, 0].numpy())
        for c in range(3):
            bc = b[i, c].flatten().numpy()
            true = np.linalg.norm(bc - a @ sol.x[i, c].flatten().numpy()) / np.linalg.norm(bc)
            assert true <= 0.1 and abs(true - float(sol.relres[i, c])) < 1e-12
    fewer = rtv_solve(b, ax2, ay2, solver="official", max_iter=int(sol.iterations.max()) - 1)
    late = sol.iterations == sol.iterations.max()
    assert bool((fewer.relres[late] > 0.1).all())
    z = IncompleteCholesky(ax2, ay2).solve(b)
    grew = 0
    for i in range(2):
        a = _dense_rtv_matrix(ax2[i, 0].numpy(), ay2[i, 0].numpy())
        for c in range(3):
            zc, bc = z[i, c].flatten().numpy(), b[i, c].flatten().numpy()
            step = (bc @ zc) / (zc @ a @ zc) * zc
            rel = np.linalg.norm(bc - a @ step) / np.linalg.norm(bc)
            args = (b[i : i + 1, c : c + 1], ax2[i : i + 1], ay2[i : i + 1], "official")
            if rel < 1:  # a tolerance just above the first step's residual: stops there
                first = rtv_solve(*args, tol=rel * (1 + 1e-9))
                assert int(first.iterations) == 1
                assert np.abs(first.x.flatten().numpy() - step).max() < 1e-12
            else:  # CG may raise the 2-norm residual: pcg then keeps x0 = 0 (its flag 1)
                grew += 1
                stuck = rtv_solve(*args, tol=1e-3, max_iter=1)
                assert torch.all(stuck.x == 0) and float(stuck.relres) == 1.0
    assert 0 < grew < 6  # the weights above make the first step overshoot on some systems


def test_official_solver_converges_to_the_exact_solution_when_asked(photos):
    """With a tight tolerance the MIC(0)-PCG reaches the same system solution as spsolve (the
    loose 0.1 stop is the only difference between the solvers)."""
    x = photos[:1].double()
    wx, wy = rtv_weights(x, 3.0, 0.001)
    tight = rtv_solve(x, 0.0075 * wx, 0.0075 * wy, solver="official", tol=1e-10)
    assert float(tight.relres.max()) <= 1e-10
    exact = rtv_smooth_reference(x[0].permute(1, 2, 0).numpy(), iterations=1)
    assert np.abs(tight.x[0].permute(1, 2, 0).numpy() - exact).max() < 1e-8


def test_solvers_agree_closely_on_a_smooth_image_and_roughly_on_photos(photos):
    """Smooth (no texture) image: the loose official stop and the exact solve differ by < 0.02
    (measured 0.0085); photos: mean |diff| < 0.003 (measured 7e-4), max < 0.05 (0.015)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    smooth = torch.stack(
        [0.5 + 0.3 * torch.sin(2 * np.pi * xx), 0.5 + 0.3 * torch.cos(2 * np.pi * yy), xx * yy]
    )[None]
    a, b = rtv_smooth(smooth, solver="official"), rtv_smooth(smooth, solver="exact")
    assert (a - b).abs().max() < 0.02
    a, b = rtv_smooth(photos, solver="official"), rtv_smooth(photos, solver="exact")
    assert (a - b).abs().mean() < 0.003 and (a - b).abs().max() < 0.05
    assert (a - b).abs().max() > 1e-4  # they are different solvers


def test_official_is_the_default_and_batch_independent(photos):
    """Every image and channel stops on its own, so batching changes nothing (the exact
    solver's shared stop keeps it within its tolerance); the default solver is the official
    one, computed in float64 whatever the input dtype, returned in the input dtype."""
    default = rtv_smooth(photos)
    assert default.dtype == photos.dtype
    single = rtv_smooth(photos[1:2], solver="official")
    assert torch.allclose(single, default[1:2], atol=1e-6)
    as_double = rtv_smooth(photos.double(), solver="official")
    assert torch.allclose(as_double.float(), default, atol=1e-6)
    exact_single = rtv_smooth(photos[1:2], solver="exact")
    assert torch.allclose(exact_single, rtv_smooth(photos, solver="exact")[1:2], atol=1e-4)


def test_bad_solver_settings_are_named():
    with pytest.raises(ValueError, match="unknown solver 'pcg'.*'exact', 'official'"):
        rtv_smooth(torch.rand(1, 3, 8, 8), solver="pcg")
    with pytest.raises(ValueError, match="tol must be > 0"):
        rtv_smooth(torch.rand(1, 3, 8, 8), tol=0.0)
