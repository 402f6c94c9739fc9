"""Classical baselines: OpenCV Telea and Navier-Stokes behind the ClassicalInpainter interface."""

from __future__ import annotations

import pytest
import torch

from inpaintzoo.baselines import (
    ALL_HOLE_FILL,
    CLASSICAL_METHODS,
    ClassicalInpainter,
    OpenCVInpainter,
    create_baseline,
)

METHODS = ["telea", "navier_stokes"]


def _square_mask(batch: int = 2, size: int = 32, start: int = 12, stop: int = 20) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[..., start:stop, start:stop] = 1.0
    return mask


@pytest.mark.parametrize("name", METHODS)
def test_interface_attributes(name):
    inpainter = create_baseline(name)
    assert isinstance(inpainter, ClassicalInpainter)
    assert isinstance(inpainter, OpenCVInpainter)
    assert inpainter.name == name
    assert inpainter.kind == "classical"
    assert inpainter.size_multiple == 1 and inpainter.min_size == 1
    assert inpainter.num_parameters is None
    assert list(inpainter.parameters()) == []
    assert set(CLASSICAL_METHODS) >= {"telea", "navier_stokes"}


@pytest.mark.parametrize("name", METHODS)
def test_known_pixels_unchanged_exactly(name):
    image = torch.rand(2, 3, 32, 32)  # not multiples of 1/255: a uint8 round trip would show
    mask = _square_mask()
    output = create_baseline(name)(image, mask)
    assert output.shape == image.shape
    known = mask.expand_as(image) == 0
    assert torch.equal(output[known], image[known])
    assert output.min() >= 0 and output.max() <= 1


@pytest.mark.parametrize("name", METHODS)
def test_constant_image_hole_filled_with_its_colour(name):
    # multiples of 1/255, so the uint8 round trip adds no error of its own; OpenCV 5's Telea
    # still jitters by up to 2 levels on a flat image (library behaviour)
    colour = torch.tensor([51.0, 153.0, 230.0]).view(1, 3, 1, 1) / 255
    image = colour.expand(2, 3, 32, 32).clone()
    mask = _square_mask()
    output = create_baseline(name)(image, mask)
    hole = mask.expand_as(image) == 1
    assert (output - image)[hole].abs().max() <= 2 / 255


@pytest.mark.parametrize("name", METHODS)
def test_one_pixel_hole(name):
    image = torch.full((1, 3, 9, 9), 0.4)
    mask = torch.zeros(1, 1, 9, 9)
    mask[..., 4, 4] = 1
    output = create_baseline(name)(image, mask)
    assert (output - image).abs().max() <= 1 / 255


@pytest.mark.parametrize("name", METHODS)
def test_horizontal_gradient_filled_continuously(name):
    ramp = torch.linspace(0, 1, 48).view(1, 1, 1, 48).expand(1, 3, 48, 48).clone()
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 18:30, 18:30] = 1
    output = create_baseline(name)(ramp, mask)
    hole = output[0, :, 18:30, 18:30]
    truth = ramp[0, :, 18:30, 18:30]
    # close to the ramp on average; near the range of the boundary values (Telea extrapolates
    # with the boundary gradient, so it may overshoot by a couple of levels)
    assert (hole - truth).abs().mean() < 0.05
    low, high = ramp[0, 0, 0, 17], ramp[0, 0, 0, 30]
    assert hole.min() >= low - 5 / 255 and hole.max() <= high + 5 / 255
    # continuous: no jump between neighbouring columns inside the hole larger than a few steps
    assert output[0, :, 18:30, 17:31].diff(dim=-1).abs().max() < 0.1


@pytest.mark.parametrize("name", METHODS)
def test_hole_content_is_never_read(name):
    image = torch.rand(1, 3, 32, 32)
    mask = _square_mask(batch=1)
    other = image.clone()
    other[..., 12:20, 12:20] = torch.rand(1, 3, 8, 8)  # a different ground truth in the hole
    inpainter = create_baseline(name)
    assert torch.equal(inpainter(image, mask), inpainter(other, mask))


@pytest.mark.parametrize("name", METHODS)
def test_edge_masks(name):
    inpainter = create_baseline(name)
    image = torch.rand(2, 3, 16, 16)
    no_hole = torch.zeros(2, 1, 16, 16)
    assert torch.equal(inpainter(image, no_hole), image)
    all_hole = torch.ones(2, 1, 16, 16)
    filled = inpainter(image, all_hole)  # nothing known: mid-gray, never the ground truth
    assert torch.allclose(filled, torch.full_like(image, round(ALL_HOLE_FILL * 255) / 255))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_device_and_dtype_preserved(dtype):
    image = torch.rand(1, 3, 16, 16).to(dtype)
    mask = _square_mask(batch=1, size=16, start=5, stop=9)
    output = OpenCVInpainter("telea")(image, mask)
    assert output.dtype == dtype and output.device == image.device
    known = mask.expand_as(image) == 0
    assert torch.equal(output[known], image[known])


def test_odd_sizes_and_batch_independence():
    inpainter = OpenCVInpainter("navier_stokes", radius=5)
    image = torch.rand(3, 3, 13, 21)
    mask = torch.zeros(3, 1, 13, 21)
    mask[0, :, 2:5, 3:9] = 1
    mask[2, :, 7:12, 10:20] = 1
    batched = inpainter(image, mask)
    single = torch.cat([inpainter(image[i : i + 1], mask[i : i + 1]) for i in range(3)])
    assert torch.equal(batched, single)
    assert torch.equal(batched[1], image[1])


def test_wrong_inputs_raise():
    inpainter = OpenCVInpainter("telea")
    image = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="mask"):
        inpainter(image, torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="does not match"):
        inpainter(image, torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="binary"):
        inpainter(image, torch.full((1, 1, 16, 16), 0.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        inpainter(image * 255, torch.zeros(1, 1, 16, 16))


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="navier_stokes.*telea|telea.*navier_stokes"):
        create_baseline("photoshop")
    with pytest.raises(ValueError, match="unknown OpenCV"):
        OpenCVInpainter("biharmonic")
    with pytest.raises(ValueError, match="radius"):
        OpenCVInpainter("telea", radius=0)


def test_subclass_slots_in():
    class FlatFill(ClassicalInpainter):
        name = "flat"

        def inpaint_array(self, image, hole):
            out = image.copy()
            out[hole] = image[~hole].mean(axis=0).round().astype(image.dtype)
            return out

    image = torch.full((1, 3, 8, 8), 0.2)
    mask = _square_mask(batch=1, size=8, start=2, stop=5)
    output = FlatFill()(image, mask)
    assert (output - image).abs().max() <= 1 / 255
    assert "radius=3" in repr(OpenCVInpainter())


# ---------------------------------------------------------------- PatchMatch (pypatchmatch)

pm_missing = not __import__("inpaintzoo.baselines", fromlist=["x"]).patchmatch_availability()[0]
needs_pm = pytest.mark.skipif(pm_missing, reason="pypatchmatch is not installed or did not load")


@needs_pm
def test_patchmatch_is_a_zoo_entry_with_no_kwargs():
    from inpaintzoo import zoo
    from inpaintzoo.baselines import PatchMatchInpainter

    model = zoo.create_model("patchmatch")
    assert isinstance(model, PatchMatchInpainter) and model.name == "patchmatch"
    assert model.kind == "classical" and model.patch_size == 3 and model.seed == 0
    assert list(model.parameters()) == []


@needs_pm
def test_patchmatch_keeps_known_pixels_and_fills_constant_colour():
    colour = torch.tensor([51.0, 153.0, 230.0]).view(1, 3, 1, 1) / 255
    image = colour.expand(2, 3, 32, 32).clone()
    mask = _square_mask()
    out = create_baseline("patchmatch")(image, mask)
    hole = mask.expand_as(image) == 1
    assert (out - image)[hole].abs().max() <= 1 / 255  # copies known patches: exact colour
    noisy = torch.rand(2, 3, 32, 32)
    out = create_baseline("patchmatch")(noisy, mask)
    assert torch.equal(out[~hole], noisy[~hole])


@needs_pm
def test_patchmatch_copies_texture_from_the_known_region():
    # a vertical stripe pattern (period 4): PatchMatch copies the stripes into the hole (their
    # contrast survives, in or out of phase) where a diffusion method (Telea) blurs them
    x = torch.arange(64).remainder(4).lt(2).float()
    image = (0.2 + 0.6 * x).view(1, 1, 1, 64).expand(1, 3, 64, 64).clone()
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 24:40, 24:40] = 1
    hole = mask.expand_as(image) == 1
    pm = create_baseline("patchmatch")(image, mask)
    telea = create_baseline("telea")(image, mask)
    pm_err = (pm - image)[hole].abs().mean()
    telea_err = (telea - image)[hole].abs().mean()
    assert pm_err < 0.6 * telea_err
    assert pm[hole].std() > 0.25 > telea[hole].std()  # stripes copied (std 0.3), not blurred


@needs_pm
def test_patchmatch_is_deterministic_and_fast_at_64px():
    import time

    torch.manual_seed(3)
    image = torch.rand(4, 3, 64, 64)
    mask = torch.zeros(4, 1, 64, 64)
    mask[..., 10:40, 20:50] = 1
    model = create_baseline("patchmatch")
    start = time.perf_counter()
    a = model(image, mask)
    per_image = (time.perf_counter() - start) / 4
    b = model(image[2:], mask[2:])  # another batch composition, same per-image result
    assert torch.equal(a[2:], b)
    assert per_image < 0.5, f"{per_image:.3f} s per 64 px image"


@needs_pm
def test_patchmatch_rejects_bad_arguments():
    from inpaintzoo.baselines import PatchMatchInpainter

    with pytest.raises(ValueError, match="patch_size"):
        PatchMatchInpainter(patch_size=0)
    with pytest.raises(ValueError, match="seed"):
        PatchMatchInpainter(seed=-1)
