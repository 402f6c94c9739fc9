"""Appearance-flow samplers: bilinear flow_warp and StructureFlow's Gaussian sampling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from inpaintzoo.blocks.flow import GaussianSampler, flow_warp, gaussian_sample


def _reference_gaussian(features, flow, k, sigma):
    """The spec's per-pixel formula (spec section 5), written as plain loops."""
    b, c, h, w = features.shape
    out = torch.zeros_like(features)
    for n in range(b):
        for y in range(h):
            for x in range(w):
                px = x + float(flow[n, 0, y, x])
                py = y + float(flow[n, 1, y, x])
                x0, y0 = math.floor(px), math.floor(py)
                a, bb = px - x0, py - y0
                total = torch.zeros(c, dtype=features.dtype)
                norm = 0.0
                for fy in range(k // 2):
                    for ry, dy in ((y0 - fy, fy + bb), (y0 + fy + 1, fy + 1 - bb)):
                        wy = math.exp(-(dy**2) / (2 * sigma**2))
                        for fx in range(k // 2):
                            for rx, dx in ((x0 - fx, fx + a), (x0 + fx + 1, fx + 1 - a)):
                                wx = math.exp(-(dx**2) / (2 * sigma**2))
                                yy, xx = min(max(ry, 0), h - 1), min(max(rx, 0), w - 1)
                                total += wy * wx * features[n, :, yy, xx]
                                norm += wy * wx
                out[n, :, y, x] = total / norm
    return out


@pytest.fixture
def feats():
    torch.manual_seed(0)
    return torch.rand(2, 3, 8, 10, dtype=torch.float64)


@pytest.mark.parametrize(("k", "sigma"), [(4, 2.0), (16, 4.0), (2, 0.7)])
def test_gaussian_sample_matches_the_spec_formula(feats, k, sigma):
    flow = torch.randn(2, 2, 8, 10, dtype=torch.float64) * 2.5
    ours = gaussian_sample(feats, flow, k, sigma)
    ref = _reference_gaussian(feats, flow, k, sigma)
    assert torch.allclose(ours, ref, atol=1e-10)


def test_zero_flow_is_identity_for_bilinear_and_nearly_for_tiny_sigma(feats):
    zero = torch.zeros(2, 2, 8, 10, dtype=torch.float64)
    assert torch.allclose(flow_warp(feats, zero), feats, atol=1e-12)
    assert torch.allclose(gaussian_sample(feats, zero, 4, 0.05), feats, atol=1e-12)
    # with the official sigma the window blurs: not the identity
    assert not torch.allclose(gaussian_sample(feats, zero, 4, 2.0), feats, atol=1e-3)


def test_integer_shift_flow_shifts(feats):
    flow = torch.zeros(2, 2, 8, 10, dtype=torch.float64)
    flow[:, 0] = 2.0  # read two columns to the right
    flow[:, 1] = -1.0  # and one row up
    expected = feats[:, :, :-1, 2:]  # out[y, x] = in[y - 1, x + 2] where inside
    for out in (flow_warp(feats, flow), gaussian_sample(feats, flow, 4, 0.05)):
        assert torch.allclose(out[:, :, 1:, :-2], expected, atol=1e-12)
        # border clamping: the first row reads row 0
        assert torch.allclose(out[:, :, 0, :-2], feats[:, :, 0, 2:], atol=1e-12)


def test_tiny_sigma_gives_nearest_neighbour_sampling(feats):
    """sigma -> 0: the nearest window entry dominates (nearest, not bilinear, sampling)."""
    flow = torch.rand(2, 2, 8, 10, dtype=torch.float64) * 4 - 2
    flow = flow.clamp(-2, 2)
    # keep fractional parts away from 0.5, where nearest is ambiguous
    frac = flow - flow.floor()
    flow = torch.where((frac - 0.5).abs() < 0.1, flow + 0.2, flow)
    near = flow_warp(feats, flow, mode="nearest")
    ours = gaussian_sample(feats, flow, 4, 0.02)
    assert torch.allclose(ours, near, atol=1e-8)
    bil = flow_warp(feats, flow)
    assert not torch.allclose(ours, bil, atol=1e-3)


def test_bilinear_warp_matches_manual_interpolation():
    x = torch.arange(12, dtype=torch.float64).view(1, 1, 3, 4)
    flow = torch.zeros(1, 2, 3, 4, dtype=torch.float64)
    flow[:, 0] = 0.25
    out = flow_warp(x, flow)
    # rows are linear in x (step 1) except at the last column, which clamps
    assert torch.allclose(out[..., :3], x[..., :3] + 0.25)
    assert torch.allclose(out[..., 3], x[..., 3])


def test_gradients_reach_features_and_flow():
    torch.manual_seed(1)
    f = torch.rand(1, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    flow = (torch.randn(1, 2, 6, 6, dtype=torch.float64) * 0.7).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: gaussian_sample(a, b, 4, 2.0), (f, flow))


def test_module_and_bad_inputs(feats):
    sampler = GaussianSampler(16, 4.0)
    assert "kernel_size=16" in repr(sampler) and not list(sampler.parameters())
    assert sampler(feats, torch.zeros(2, 2, 8, 10, dtype=torch.float64)).shape == feats.shape
    with pytest.raises(ValueError, match="even"):
        GaussianSampler(3, 1.0)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_sample(feats, torch.zeros(2, 2, 8, 10), 4, 0.0)
    with pytest.raises(ValueError, match="flow"):
        gaussian_sample(feats, torch.zeros(2, 2, 4, 5), 4, 1.0)
    with pytest.raises(ValueError, match="flow"):
        flow_warp(feats, torch.zeros(2, 3, 8, 10))


def test_float32_and_grid_sample_agree_at_integer_flows():
    x = torch.rand(1, 2, 16, 16)
    flow = torch.randint(-3, 4, (1, 2, 16, 16)).float()
    a = flow_warp(x, flow)
    b = gaussian_sample(x, flow, 4, 0.05)
    assert torch.allclose(a, b, atol=1e-6)
    assert F.l1_loss(a, x) > 0  # a real displacement
