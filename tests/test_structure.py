"""inpaintzoo.structure: gray, Canny (vs scikit-image), Sobel, edge precision/recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage
import torch
from PIL import Image
from scipy import ndimage
from skimage.color import rgb2gray
from skimage.feature import canny as sk_canny

from inpaintzoo.structure import (
    CannyEdges,
    canny_edges,
    canny_kernel_size,
    edge_precision_recall,
    gradient_magnitude,
    rgb_to_gray,
    sobel_gradients,
)
from inpaintzoo.structure.edges import _hysteresis

CAMERA = Path(skimage.__file__).parent / "data" / "camera.png"


def camera(size: int) -> np.ndarray:
    """scikit-image's camera.png (the file, not skimage.data), gray float64 in [0, 1]."""
    image = Image.open(CAMERA).convert("L").resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.float64) / 255.0


def to_tensor(gray: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(gray).float()[None, None]


def f1_tolerant(ours: np.ndarray, ref: np.ndarray, tolerance: int = 1) -> float:
    """F1 where a pixel matches when the other map has an edge within ``tolerance`` px."""
    structure = np.ones((2 * tolerance + 1,) * 2, dtype=bool)
    precision = (ours & ndimage.binary_dilation(ref, structure)).sum() / max(ours.sum(), 1)
    recall = (ref & ndimage.binary_dilation(ours, structure)).sum() / max(ref.sum(), 1)
    return float(2 * precision * recall / max(precision + recall, 1e-12))


def square_image(size: int = 64, lo: int = 16, hi: int = 48, height: float = 1.0) -> torch.Tensor:
    image = torch.zeros(1, 1, size, size)
    image[..., lo:hi, lo:hi] = height
    return image


# --------------------------------------------------------------------------- gray


def test_rgb_to_gray_matches_skimage():
    rgb = torch.rand(2, 3, 17, 23, dtype=torch.float64)
    ours = rgb_to_gray(rgb)
    assert ours.shape == (2, 1, 17, 23)
    for i in range(2):
        ref = rgb2gray(rgb[i].permute(1, 2, 0).numpy())
        np.testing.assert_allclose(ours[i, 0].numpy(), ref, atol=1e-12)
    gray = torch.rand(2, 1, 8, 8)
    assert rgb_to_gray(gray) is gray
    with pytest.raises(ValueError):
        rgb_to_gray(torch.rand(1, 2, 8, 8))


# --------------------------------------------------------------------------- canny


def test_kernel_size_matches_skimage_truncate_4():
    # scipy's gaussian_filter radius is int(truncate * sigma + 0.5)
    for sigma in (1.0, 1.5, 2.0, 3.0):
        assert canny_kernel_size(sigma) == 2 * int(4 * sigma + 0.5) + 1
    assert canny_kernel_size(2.0) == 17


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_canny_square_border_and_flat_areas(sigma):
    image = square_image()
    edges = canny_edges(image, sigma=sigma)
    assert edges.shape == (1, 1, 64, 64) and edges.dtype == torch.float32
    assert set(edges.unique().tolist()) <= {0.0, 1.0}
    e = edges[0, 0].numpy() > 0
    square = image[0, 0].numpy() > 0
    boundary = square ^ ndimage.binary_erosion(square)  # inner boundary ring
    near = ndimage.binary_dilation(boundary, np.ones((5, 5), bool))
    assert e.sum() > 0
    assert not (e & ~near).any(), "edges in flat areas"
    # (almost) every boundary pixel has an edge within 1 px (corners are rounded by the blur)
    covered = (boundary & ndimage.binary_dilation(e, np.ones((3, 3), bool))).sum()
    assert covered / boundary.sum() > 0.85


@pytest.mark.parametrize("sigma", [1.0, 2.0])
@pytest.mark.parametrize("height", [1.0, 0.3])
def test_canny_detects_step_heights(sigma, height):
    image = torch.zeros(1, 1, 48, 48)
    image[..., :, 24:] = height
    edges = canny_edges(image, sigma=sigma)[0, 0]
    columns = edges.sum(dim=0)
    # one continuous vertical line next to the step, nothing elsewhere
    assert columns[22:26].sum() >= 48
    assert columns[:20].sum() == 0 and columns[28:].sum() == 0


def test_canny_rgb_gray_module_and_batch():
    rgb = torch.rand(3, 3, 32, 32)
    gray = rgb_to_gray(rgb)
    by_rgb = canny_edges(rgb, sigma=1.0)
    assert torch.equal(by_rgb, canny_edges(gray, sigma=1.0))
    assert torch.equal(by_rgb, CannyEdges(sigma=1.0)(rgb))
    # batched == one by one
    for i in range(3):
        assert torch.equal(by_rgb[i : i + 1], canny_edges(rgb[i : i + 1], sigma=1.0))


@pytest.mark.parametrize("sigma", [0.0, -1.0])
def test_canny_nonpositive_sigma_gives_zeros(sigma):
    edges = canny_edges(square_image(), sigma=sigma)
    assert edges.shape == (1, 1, 64, 64) and not edges.any()


def test_canny_mask_suppresses_hole_and_border_and_ignores_hole_content():
    gray = to_tensor(camera(64))
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:40, 24:44] = 1
    edges = canny_edges(gray, sigma=1.0, mask=mask)
    dilated = torch.nn.functional.max_pool2d(mask, 3, stride=1, padding=1)
    assert edges.sum() > 0
    assert (edges * dilated).sum() == 0
    # the hole's content never reaches the edges (normalised smoothing over the valid pixels)
    scrambled = gray.clone()
    scrambled[..., 20:40, 24:44] = torch.rand(20, 20)
    assert torch.equal(edges, canny_edges(scrambled, sigma=1.0, mask=mask))
    # an empty hole changes nothing
    assert torch.equal(
        canny_edges(gray, sigma=1.0, mask=torch.zeros_like(mask)), canny_edges(gray, sigma=1.0)
    )


@pytest.mark.parametrize(
    ("size", "sigma", "min_f1"),
    # measured: 0.974 (256, sigma 2) and 0.998 (64, sigma 1); pixel-exact F1 0.904 / 0.934
    [(256, 2.0, 0.95), (64, 1.0, 0.95)],
)
def test_canny_agrees_with_skimage_on_camera(size, sigma, min_f1):
    gray = camera(size)
    reference = sk_canny(gray, sigma=sigma)
    ours = canny_edges(to_tensor(gray), sigma=sigma)[0, 0].numpy() > 0
    assert f1_tolerant(ours, reference, tolerance=1) >= min_f1
    assert f1_tolerant(ours, reference, tolerance=0) >= 0.85


def test_canny_mask_mode_agrees_with_skimage_mask():
    gray = camera(256)
    hole = np.zeros(gray.shape, dtype=bool)
    hole[64:128, 85:170] = True
    reference = sk_canny(gray, sigma=2.0, mask=~hole)
    ours = canny_edges(to_tensor(gray), sigma=2.0, mask=to_tensor(hole.astype(np.float64)))
    ours = ours[0, 0].numpy() > 0
    assert f1_tolerant(ours, reference) >= 0.93  # measured 0.963


def test_hysteresis_label_and_iterative_agree_with_kornia():
    import kornia

    gray = to_tensor(camera(128))
    _, weak_strong = kornia.filters.canny(gray, 0.1, 0.2, 9, (1.0, 1.0), hysteresis=False)
    _, kornia_edges = kornia.filters.canny(gray, 0.1, 0.2, 9, (1.0, 1.0), hysteresis=True)
    labelled = _hysteresis(weak_strong, method="label")
    iterative = _hysteresis(weak_strong, method="iterative")
    assert torch.equal(labelled, iterative)
    assert torch.equal(labelled.float(), kornia_edges)


# --------------------------------------------------------------------------- sobel


def test_sobel_shapes_order_and_sign_on_ramps():
    ramp_x = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    ramp_y = 2 * torch.arange(16.0).view(1, 1, 16, 1).expand(1, 1, 16, 16)
    rgb = torch.cat([ramp_x, ramp_y, -ramp_x], dim=1)
    grad = sobel_gradients(rgb)
    assert grad.shape == (1, 6, 16, 16)
    inner = grad[..., 2:-2, 2:-2]
    # [R_dy, R_dx, G_dy, G_dx, B_dy, B_dx], unnormalised (8 x slope)
    expected = [0.0, 8.0, 16.0, 0.0, 0.0, -8.0]
    for channel, value in enumerate(expected):
        torch.testing.assert_close(inner[0, channel], torch.full((12, 12), value))
    normalized = sobel_gradients(rgb, normalized=True)[..., 2:-2, 2:-2]
    torch.testing.assert_close(normalized[0, 1], torch.ones(12, 12))
    magnitude = gradient_magnitude(rgb)
    assert magnitude.shape == (1, 3, 16, 16)
    torch.testing.assert_close(
        magnitude[0, :, 2:-2, 2:-2].mean(dim=(1, 2)), torch.tensor([8.0, 16.0, 8.0])
    )


def test_gradient_magnitude_is_differentiable_on_flat_images():
    image = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)
    gradient_magnitude(image).sum().backward()
    assert torch.isfinite(image.grad).all()


# --------------------------------------------------------------------------- precision/recall


def test_edge_precision_recall_known_values():
    target = torch.zeros(1, 1, 4, 4)
    pred = torch.zeros(1, 1, 4, 4)
    target[0, 0, 0, :] = 1  # 4 true edges
    pred[0, 0, 0, :2] = 0.9  # 2 TP
    pred[0, 0, 3, :] = 0.7  # 4 FP
    pred[0, 0, 2, 0] = 0.4  # below threshold
    precision, recall = edge_precision_recall(pred, target)
    torch.testing.assert_close(precision, torch.tensor(2 / 6), atol=1e-6, rtol=0)
    torch.testing.assert_close(recall, torch.tensor(2 / 4), atol=1e-6, rtol=0)
    # inside the hole only: the hole covers rows 0-1 -> 2 predicted, 4 true, 2 TP
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    precision, recall = edge_precision_recall(pred, target, mask=mask)
    torch.testing.assert_close(precision, torch.tensor(1.0), atol=1e-6, rtol=0)
    torch.testing.assert_close(recall, torch.tensor(0.5), atol=1e-6, rtol=0)
    # no edge anywhere -> (1, 1) as EdgeConnect
    zeros = torch.zeros(2, 1, 4, 4)
    assert [float(v) for v in edge_precision_recall(zeros, zeros)] == [1.0, 1.0]
