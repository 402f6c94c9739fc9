"""Blocks and losses of the structure-knowledge model: the pooled non-local attention, the
gen_conv/gen_deconv layers, the pyramid structure loss, the TF Sobel map and the VGG
content/style losses (specs/structure_knowledge.md §3, §6)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from inpaintzoo.blocks.nonlocal_attention import (
    TF_INSTANCE_NORM_EPS,
    PooledNonLocalAttention,
    tf_conv_norm_act,
    tf_deconv_norm_act,
)
from inpaintzoo.losses.pyramid import (
    PyramidStructureLoss,
    edge_priority_map,
    opencv_gaussian_kernel1d,
)

# ----------------------------------------------------------------------------- attention


def test_attention_shapes_and_identity_at_init():
    block = PooledNonLocalAttention(32, reduction=16)
    block.keep_attention = True
    x = torch.randn(2, 32, 16, 24)
    y = block(x)
    assert y.shape == x.shape
    # gamma is initialised to 0: the block is exactly the identity (spec §3 step 5)
    assert block.gamma.item() == 0.0
    assert torch.equal(y, x)
    # queries at 1/2 resolution, keys/values max-pooled to 1/4: (B, 8*12, 4*6)
    att = block.last_attention
    assert att.shape == (2, 8 * 12, 4 * 6)
    torch.testing.assert_close(att.sum(-1), torch.ones(2, 8 * 12))
    assert block.inner_channels == 2


def test_attention_with_nonzero_gamma_mixes_in_the_attended_features():
    torch.manual_seed(0)
    block = PooledNonLocalAttention(16, reduction=4)
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        block.gamma.fill_(0.5)
        o = block.up(
            torch.bmm(
                torch.softmax(
                    torch.bmm(
                        block.query(block.down(x)).flatten(2).transpose(1, 2),
                        torch.nn.functional.max_pool2d(block.key(block.down(x)), 2).flatten(2),
                    ),
                    -1,
                ),
                torch.nn.functional.max_pool2d(block.value(block.down(x)), 2)
                .flatten(2)
                .transpose(1, 2),
            )
            .transpose(1, 2)
            .reshape(1, 4, 4, 4)
        )
        expected = 0.5 * o + x
        y = block(x)
    assert not torch.allclose(y, x)
    torch.testing.assert_close(y, expected)


def test_attention_gradient_reaches_gamma_and_layers():
    block = PooledNonLocalAttention(16, reduction=4)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    block(x).square().sum().backward()
    assert block.gamma.grad is not None and block.gamma.grad.abs() > 0
    # gamma = 0: the branch's weights get no gradient until gamma moves (as in the original)
    assert block.down.conv.weight.grad is None or block.down.conv.weight.grad.abs().sum() == 0


def test_attention_rejects_bad_input():
    block = PooledNonLocalAttention(16, reduction=4)
    with pytest.raises(ValueError, match=r"expects \(B, 16, H, W\)"):
        block(torch.randn(1, 8, 8, 8))
    with pytest.raises(ValueError, match="divisible by 4"):
        block(torch.randn(1, 16, 10, 8))
    with pytest.raises(ValueError, match="reduction"):
        PooledNonLocalAttention(8, reduction=16)


def test_gen_conv_and_deconv_layers():
    conv = tf_conv_norm_act(3, 8, 4, stride=2)
    assert conv(torch.randn(1, 3, 16, 16)).shape == (1, 8, 8, 8)  # reflect pad int(1.5) = 1
    assert conv.pad.padding == (1, 1, 1, 1)
    assert conv.norm.affine and conv.norm.eps == TF_INSTANCE_NORM_EPS
    assert tf_conv_norm_act(3, 8, 7)(torch.randn(1, 3, 16, 16)).shape == (1, 8, 16, 16)
    head = tf_conv_norm_act(8, 3, 1, activation="tanh")
    out = head(torch.randn(2, 8, 5, 5) * 10)
    assert out.abs().max() <= 1
    up = tf_deconv_norm_act(8, 4)
    assert up(torch.randn(1, 8, 5, 7)).shape == (1, 4, 10, 14)
    with pytest.raises(ValueError, match="unknown activation"):
        tf_conv_norm_act(3, 8, 3, activation="gelu")


# ----------------------------------------------------------------------------- pyramid loss


def test_opencv_kernel_matches_cv2():
    cv2 = pytest.importorskip("cv2")
    ours = opencv_gaussian_kernel1d(5, 1.0).numpy()
    np.testing.assert_allclose(ours, cv2.getGaussianKernel(5, 1.0)[:, 0], rtol=1e-6)


def test_edge_priority_map_blurs_twice_with_zero_padding():
    edge = torch.zeros(1, 1, 9, 9)
    edge[..., 4, 4] = 1
    once = edge_priority_map(edge, iterations=1)
    k = opencv_gaussian_kernel1d(5, 1.0).float()
    torch.testing.assert_close(once[0, 0, 2:7, 2:7], torch.outer(k, k))
    twice = edge_priority_map(edge, iterations=2)
    assert twice.sum() == pytest.approx(1.0, abs=1e-5)  # mass kept away from the border
    # at a corner, zero padding loses mass
    corner = torch.zeros(1, 1, 9, 9)
    corner[..., 0, 0] = 1
    assert edge_priority_map(corner).sum() < 0.6


def test_pyramid_loss_is_zero_for_identical_maps():
    loss = PyramidStructureLoss()
    grads = [torch.randn(2, 6, s, s) for s in (8, 16, 32)]
    edges = [(torch.rand(2, 1, s, s) > 0.8).float() for s in (8, 16, 32)]
    out = loss(grads, [g.clone() for g in grads], edges)
    assert float(out["total"]) == 0.0
    assert set(out) == {"total", *(f"{t}_{i}" for t in ("edge_l1", "grad_l1") for i in range(3))}


def test_pyramid_loss_hand_computed_two_pixel_example():
    """1x2 image, one channel, an edge on the left pixel, errors e0 = 1 and e1 = 3.

    One 5x5 blur of the delta gives (k0^2, k0 k1) on the two pixels (zero padding); the second
    gives w0 = k0^4 + k0^2 k1^2 and w1 = 2 k0^3 k1 with k the OpenCV kernel (sigma 1):
    k0 = 1/S, k1 = exp(-1/2)/S, S = 1 + 2 exp(-1/2) + 2 exp(-2).
    """
    s = 1 + 2 * math.exp(-0.5) + 2 * math.exp(-2)
    k0, k1 = 1 / s, math.exp(-0.5) / s
    w0, w1 = k0**4 + k0**2 * k1**2, 2 * k0**3 * k1
    e0, e1 = 1.0, 3.0
    edge_l1 = (w0 * e0 + w1 * e1) / (w0 + w1)  # edge_alpha cancels; / channels (1)
    grad_l1 = 0.1 * (e0 + e1) / 2
    loss = PyramidStructureLoss(alpha=2.0)
    pred = torch.tensor([[[[1.0, -3.0]]]])
    target = torch.zeros(1, 1, 1, 2)
    edge = torch.tensor([[[[1.0, 0.0]]]])
    out = loss([pred], [target], [edge])
    assert float(out["edge_l1_0"]) == pytest.approx(edge_l1, rel=1e-5)
    assert float(out["grad_l1_0"]) == pytest.approx(grad_l1, rel=1e-6)
    assert float(out["total"]) == pytest.approx(2.0 * (edge_l1 + grad_l1), rel=1e-5)


def test_pyramid_loss_weights_errors_on_edges():
    loss = PyramidStructureLoss()
    edge = torch.zeros(1, 1, 32, 32)
    edge[..., 8, :] = 1  # a horizontal edge line
    target = torch.zeros(1, 6, 32, 32)
    on_edge, off_edge = target.clone(), target.clone()
    on_edge[:, 0, 8, 10] = 1.0  # one channel wrong on the edge line
    off_edge[:, 0, 24, 10] = 1.0  # the same error far from it
    a = loss([on_edge], [target], [edge])
    b = loss([off_edge], [target], [edge])
    assert float(a["grad_l1_0"]) == pytest.approx(float(b["grad_l1_0"]))  # same plain L1
    assert float(a["edge_l1_0"]) > 0 and float(b["edge_l1_0"]) == 0.0
    assert float(a["total"]) > float(b["total"])
    # the edge term averages over the 6 channels
    six = on_edge.clone()
    six[:, :, 8, 10] = 1.0
    assert float(loss([six], [target], [edge])["edge_l1_0"]) == pytest.approx(
        6 * float(a["edge_l1_0"]), rel=1e-5
    )


def test_pyramid_loss_without_edges_is_finite_and_checks_inputs():
    loss = PyramidStructureLoss()
    out = loss([torch.ones(1, 6, 8, 8)], [torch.zeros(1, 6, 8, 8)], [torch.zeros(1, 1, 8, 8)])
    assert float(out["edge_l1_0"]) == 0.0 and float(out["grad_l1_0"]) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="one entry per scale"):
        loss([torch.ones(1, 6, 8, 8)], [], [])
    with pytest.raises(ValueError, match="does not match"):
        loss([torch.ones(1, 6, 8, 8)], [torch.ones(1, 6, 8, 8)], [torch.ones(1, 1, 4, 4)])
    with pytest.raises(ValueError, match="differ"):
        loss([torch.ones(1, 6, 8, 8)], [torch.ones(1, 6, 4, 4)], [torch.ones(1, 1, 8, 8)])


def test_pyramid_loss_gradient_flows_to_predictions():
    loss = PyramidStructureLoss()
    pred = torch.randn(1, 6, 8, 8, requires_grad=True)
    edge = (torch.rand(1, 1, 8, 8) > 0.7).float()
    loss([pred], [torch.zeros(1, 6, 8, 8)], [edge])["total"].backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- Sobel map


def test_tf_sobel_gradients_layout_and_reflect_border():
    from inpaintzoo.methods.structure_knowledge import tf_sobel_gradients

    torch.manual_seed(0)
    image = torch.rand(1, 3, 6, 7) * 2 - 1
    grad = tf_sobel_gradients(image)
    assert grad.shape == (1, 6, 6, 7)
    # reference: numpy reflect padding (TF 'REFLECT' = numpy 'reflect') and the spec's kernels
    ky = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64)
    kx = ky.T
    for c in range(3):
        padded = np.pad(image[0, c].double().numpy(), 1, mode="reflect")
        for name, kernel, channel in (("dy", ky, 2 * c), ("dx", kx, 2 * c + 1)):
            ref = np.zeros((6, 7))
            for i in range(6):
                for j in range(7):
                    ref[i, j] = (padded[i : i + 3, j : j + 3] * kernel).sum()
            np.testing.assert_allclose(grad[0, channel].numpy(), ref, atol=1e-5, err_msg=name)


# ----------------------------------------------------------------------------- VGG losses


def test_content_style_loss_formulas_with_a_random_backbone():
    from inpaintzoo.losses import gram_matrix
    from inpaintzoo.methods.structure_knowledge import ContentStyleLoss

    torch.manual_seed(0)
    # scales 1: the formulas themselves (the official-magnitude factors have their own test)
    loss = ContentStyleLoss(
        0.1, 250.0, "random", layer_weights={"relu1_1": 0.2}, content_scale=1, style_scale=1
    )
    target = torch.rand(2, 3, 16, 16)
    pred = torch.rand(2, 3, 16, 16)
    zero = loss([target.clone()], target)
    assert float(zero["content"]) == 0.0 and float(zero["style"]) == 0.0
    out = loss([pred, pred], target)
    fp = loss.extractor(pred)["relu1_1"]
    ft = loss.extractor(target)["relu1_1"]
    content = 0.2 * ((fp - ft) ** 2).mean()
    style = 0.2 * ((gram_matrix(fp) - gram_matrix(ft)) ** 2).sum() / fp.numel()
    assert float(out["content"]) == pytest.approx(2 * float(content), rel=1e-4)
    assert float(out["style"]) == pytest.approx(2 * float(style), rel=1e-4)
    style_only = ContentStyleLoss(0.0, 1.0, "random", {"relu1_1": 0.2}, 1, 1)([pred], target)
    assert float(style_only["content"]) == 0.0
