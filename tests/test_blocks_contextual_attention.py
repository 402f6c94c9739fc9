"""ContextualAttention (DeepFill v1/v2, blocks/contextual_attention.py): its defining property
(a patch known elsewhere is copied into the hole; hole patches are never a source), equality with
a written-out per-sample reference of the official formulation, batch vectorisation, any size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from inpaintzoo.blocks import ContextualAttention


# ----------------------------------------------------------------------------- the reference
def reference_contextual_attention(
    f, b, mask, rate=2, softmax_scale=10.0, fuse=True, pooling="max", fuse_k=3
):
    """The official per-sample loop (JiahuiYu/generative_inpainting ``contextual_attention``)
    written out with conv2d / conv2d_transpose per sample: keys as conv kernels, the fuse as an
    identity-kernel conv on the (positions x keys) score image, raw patches as transposed-conv
    kernels. H, W multiples of ``rate``; ``mask`` (B or 1, 1, H, W) at the background's size."""
    outs = []
    eye = torch.eye(fuse_k, dtype=f.dtype).view(1, 1, fuse_k, fuse_k)
    for i in range(f.shape[0]):
        fi, bi = f[i : i + 1], b[i : i + 1]
        c = fi.shape[1]
        # raw 2r x 2r patches of the full-resolution background at stride r ('SAME': r/2 each side)
        raw = F.pad(bi, (rate // 2,) * 4).unfold(2, 2 * rate, rate).unfold(3, 2 * rate, rate)
        h, w = raw.shape[2:4]
        raw = raw.permute(0, 2, 3, 1, 4, 5).reshape(h * w, c, 2 * rate, 2 * rate)
        fs, bs = fi[:, :, ::rate, ::rate], bi[:, :, ::rate, ::rate]
        hb, wb = bs.shape[-2:]
        hf, wf = fs.shape[-2:]
        keys = F.pad(bs, (1, 1, 1, 1)).unfold(2, 3, 1).unfold(3, 3, 1)
        keys = keys.permute(0, 2, 3, 1, 4, 5).reshape(hb * wb, c, 3, 3)
        keys = keys / keys.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-4)
        y = F.conv2d(fs, keys, padding=1)  # (1, L, hf, wf)
        y = y.view(hb * wb, hf * wf).t().reshape(1, 1, hf * wf, hb * wb)
        if fuse:
            y = F.conv2d(y, eye, padding=fuse_k // 2)
            y = y.view(1, hf, wf, hb, wb).permute(0, 2, 1, 4, 3).reshape(1, 1, hf * wf, hb * wb)
            y = F.conv2d(y, eye, padding=fuse_k // 2)
            y = y.view(1, wf, hf, wb, hb).permute(0, 2, 1, 4, 3)
        y = y.reshape(hf * wf, hb * wb)
        mi = mask[i : i + 1] if mask.shape[0] > 1 else mask
        small = F.max_pool2d(mi, rate) if pooling == "max" else mi[:, :, ::rate, ::rate]
        windows = F.pad(small, (1, 1, 1, 1)).unfold(2, 3, 1).unfold(3, 3, 1).reshape(hb * wb, 9)
        valid = (windows.mean(1) == 0).to(f.dtype)
        y = F.softmax(y * valid * softmax_scale, dim=1) * valid
        attention = y.t().reshape(1, hb * wb, hf, wf)
        outs.append(F.conv_transpose2d(attention, raw, stride=rate, padding=rate // 2) / 4.0)
    return torch.cat(outs)


def _box_masks(batch: int, h: int, w: int, dtype=torch.float64) -> torch.Tensor:
    mask = torch.zeros(batch, 1, h, w, dtype=dtype)
    boxes = [(2, 9, 3, 12), (8, 15, 10, 18), (5, 6, 0, w), (0, 4, 0, 4)]
    for i in range(batch):
        t, b, left, r = boxes[i % len(boxes)]
        mask[i, :, t:b, left:r] = 1
    return mask


# ----------------------------------------------------------------------------- equality
@pytest.mark.parametrize(
    ("same", "pooling", "fuse"),
    [(True, "max", True), (False, "max", True), (True, "nearest", True), (True, "max", False)],
)
def test_equals_the_per_sample_reference_on_random_inputs(same, pooling, fuse):
    torch.manual_seed(0)
    f = torch.randn(4, 6, 16, 20, dtype=torch.float64)
    b = f if same else torch.randn_like(f)
    mask = _box_masks(4, 16, 20)
    ca = ContextualAttention(mask_pooling=pooling, fuse=fuse)
    expected = reference_contextual_attention(f, b, mask, pooling=pooling, fuse=fuse)
    got = ca(f, b, mask)
    assert expected.abs().mean() > 0.1  # not a trivial all-masked case
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_one_mask_for_the_batch_broadcasts_like_per_sample_masks():
    torch.manual_seed(1)
    f = torch.randn(3, 4, 16, 16, dtype=torch.float64)
    mask = _box_masks(1, 16, 16)
    ca = ContextualAttention()
    torch.testing.assert_close(ca(f, mask=mask), ca(f, mask=mask.expand(3, -1, -1, -1)))
    torch.testing.assert_close(ca(f, mask=mask), reference_contextual_attention(f, f, mask))


def test_other_even_rates_equal_the_reference():
    torch.manual_seed(7)
    f = torch.randn(2, 3, 16, 24, dtype=torch.float64)
    mask = _box_masks(2, 16, 24)
    got = ContextualAttention(rate=4)(f, mask=mask)
    torch.testing.assert_close(
        got, reference_contextual_attention(f, f, mask, rate=4), rtol=0, atol=1e-10
    )


@pytest.mark.parametrize("size", [(16, 24), (2, 12)])  # a 1-row grid: shifts wrap twice
def test_a_wider_fuse_kernel_equals_the_reference(size):
    torch.manual_seed(8)
    f = torch.randn(2, 3, *size, dtype=torch.float64)
    mask = torch.zeros(2, 1, *size, dtype=torch.float64)
    mask[0, :, :, :4] = 1
    got = ContextualAttention(fuse_kernel=5)(f, mask=mask)
    expected = reference_contextual_attention(f, f, mask, fuse_k=5)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-10)


def test_gradients_match_the_reference():
    torch.manual_seed(2)
    f = torch.randn(2, 3, 8, 12, dtype=torch.float64, requires_grad=True)
    mask = _box_masks(2, 8, 12)
    weights = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    (g_ours,) = torch.autograd.grad((ContextualAttention()(f, mask=mask) * weights).sum(), f)
    (g_ref,) = torch.autograd.grad((reference_contextual_attention(f, f, mask) * weights).sum(), f)
    torch.testing.assert_close(g_ours, g_ref, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------- the property
def test_a_known_patch_is_copied_into_the_hole():
    """A 12 x 12 block of the known region is duplicated inside the hole: with the hole masked,
    every position of the hole copy attends to its source (the self-match is not a source) and
    the pasted output reproduces the source block."""
    torch.manual_seed(3)
    x = torch.randn(1, 8, 32, 32, dtype=torch.float64)
    src, dst = (2, 2), (18, 18)  # top-left corners (full resolution, even)
    x[..., dst[0] : dst[0] + 12, dst[1] : dst[1] + 12] = x[
        ..., src[0] : src[0] + 12, src[1] : src[1] + 12
    ]
    mask = torch.zeros(1, 1, 32, 32, dtype=torch.float64)
    mask[..., 16:32, 14:32] = 1  # the hole holds the copy; the source is a valid key
    ca = ContextualAttention()
    flow = ca.offsets(x, mask=mask)  # (1, 2, 16, 16) on the downscaled grid
    inner = flow[0, :, dst[0] // 2 + 1 : dst[0] // 2 + 5, dst[1] // 2 + 1 : dst[1] // 2 + 5]
    expected = torch.tensor([(src[0] - dst[0]) // 2, (src[1] - dst[1]) // 2]).view(2, 1, 1)
    assert torch.equal(inner, expected.expand_as(inner))
    out = ca(x, mask=mask)
    block = (slice(None), slice(None), slice(dst[0] + 3, dst[0] + 9), slice(dst[1] + 3, dst[1] + 9))
    source = x[..., src[0] + 3 : src[0] + 9, src[1] + 3 : src[1] + 9]
    torch.testing.assert_close(out[block], source, rtol=0, atol=1e-6)


def test_hole_patches_are_never_a_source():
    torch.manual_seed(4)
    f, b = torch.randn(2, 4, 24, 24), torch.randn(2, 4, 24, 24)
    mask = torch.zeros(2, 1, 24, 24)
    mask[0, :, 5:13, 3:20] = 1
    mask[1, :, 9:10, :] = 1  # a one-pixel stroke: max pooling still marks its cells
    ca = ContextualAttention()
    weights = ca.attention(f, b, mask)
    hole_keys = F.max_pool2d(F.max_pool2d(mask, 2), 3, 1, 1).flatten(2)  # (B, 1, Nb)
    assert weights.shape == (2, 144, 144) and hole_keys.sum() > 0
    assert torch.all(weights[hole_keys.expand_as(weights) > 0] == 0)
    assert torch.all(weights.sum(-1) <= 1 + 1e-6) and weights.sum(-1).min() > 0.5
    # without the propagation, nothing of the hole's content reaches the output (the pasted 4x4
    # windows of valid keys lie inside their hole-free 3x3 cell windows); with it, a valid key's
    # fused score also sums its neighbours' scores (masked only after the fuse, as the official)
    other = torch.where(mask > 0, torch.randn_like(b) * 100, b)
    plain = ContextualAttention(fuse=False)
    torch.testing.assert_close(plain(f, b, mask), plain(f, other, mask), rtol=0, atol=0)


def test_nearest_pooling_can_miss_a_thin_stroke_as_the_official_resize():
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 5, :] = 1  # odd row: sampling every 2nd row never sees it
    torch.manual_seed(6)
    f = torch.randn(1, 2, 16, 16)
    stroke_keys = torch.arange(2 * 8, 3 * 8)  # keys of cell row 2 (full rows 4-5)
    nearest = ContextualAttention(mask_pooling="nearest").attention(f, mask=mask)
    pooled = ContextualAttention().attention(f, mask=mask)
    assert nearest[..., stroke_keys].sum() > 0  # the stroke's cells are used as sources
    assert torch.all(pooled[..., stroke_keys] == 0)


# ----------------------------------------------------------------------------- sizes, batching
def test_any_size_pads_with_hole_cells_and_crops_back():
    torch.manual_seed(5)
    f = torch.randn(2, 3, 13, 19, dtype=torch.float64)
    mask = _box_masks(2, 13, 19)
    ca = ContextualAttention()
    out = ca(f, mask=mask)
    assert out.shape == f.shape
    # the same as padding to a multiple of the rate with hole-marked cells, then cropping
    padded = F.pad(f, (0, 1, 0, 1))
    padded_mask = F.pad(mask, (0, 1, 0, 1), value=1.0)
    expected = reference_contextual_attention(padded, padded, padded_mask)[..., :13, :19]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-10)
    assert ContextualAttention()(torch.randn(1, 2, 1, 1)).shape == (1, 2, 1, 1)


class _CountOps(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def test_vectorised_over_the_batch_no_per_sample_loop():
    """The number of torch operations does not grow with the batch size."""
    ca = ContextualAttention()
    counts = []
    for batch in (1, 6):
        f, mask = torch.randn(batch, 4, 16, 16), _box_masks(batch, 16, 16, torch.float32)
        with _CountOps() as mode:
            ca(f, mask=mask)
        counts.append(mode.calls)
    assert counts[0] == counts[1]


def test_bad_inputs_raise_clear_errors():
    ca = ContextualAttention()
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        ca(torch.randn(4, 16, 16))
    with pytest.raises(ValueError, match="same batch size and channels"):
        ca(torch.randn(1, 4, 16, 16), torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="background's size"):
        ca(torch.randn(1, 4, 16, 16), mask=torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="mask_pooling"):
        ContextualAttention(mask_pooling="bilinear")
    with pytest.raises(ValueError, match="odd"):
        ContextualAttention(kernel_size=4)
