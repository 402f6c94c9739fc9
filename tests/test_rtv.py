"""RTV smoothing: batched torch CG solver vs the scipy spsolve reference, properties, cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import embedded_batch
from inpaintzoo.structure.rtv import (
    RTVCache,
    gaussian_kernel_size,
    rtv_smooth,
    rtv_smooth_reference,
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


def test_matches_scipy_spsolve_reference_on_embedded_photos(photos):
    """Official parameters (0.015, 3, 0.001, 3 iterations) on two 64 px photos: the batched
    PCG result is within 1e-4 (max abs, [0,1] scale) of the direct sparse solve (measured
    ~5e-6 at the default tol 1e-5)."""
    ours = rtv_smooth(photos)
    for i in range(len(photos)):
        ref = rtv_smooth_reference(photos[i].permute(1, 2, 0).double().numpy())
        ref_t = torch.from_numpy(ref).permute(2, 0, 1).float()
        assert (ours[i] - ref_t).abs().max() < 1e-4
    # and it really smooths: texture (total variation) drops a lot, colours stay put
    assert _tv(ours) < 0.6 * _tv(photos)
    assert (ours.mean((-2, -1)) - photos.mean((-2, -1))).abs().max() < 0.02


def test_constant_image_is_a_fixed_point():
    x = torch.full((1, 3, 20, 24), 0.3)
    assert torch.allclose(rtv_smooth(x), x, atol=1e-6)


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


def test_channels_share_weights_and_batch_is_independent(photos):
    single = rtv_smooth(photos[1:2])
    batched = rtv_smooth(photos)
    assert torch.allclose(single, batched[1:2], atol=1e-4)


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
