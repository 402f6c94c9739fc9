"""The one inference path: any size, padding, small and large images, classical methods."""

from __future__ import annotations

import pytest
import torch

from inpaintzoo import zoo
from inpaintzoo.predictor import Predictor, pad_to_multiple


class Recorder(torch.nn.Module):
    """A fake learned method that records the sizes it is called with."""

    size_multiple = 8
    min_size = 32
    method_name = "recorder"

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.calls = []

    def inpaint_raw(self, image, mask, **extras):
        return {"output": torch.full_like(image, 0.5)}

    def inpaint(self, image, mask, **extras):
        self.calls.append(tuple(image.shape[-2:]))
        assert image.shape[-1] % self.size_multiple == 0
        assert image.shape[-2] % self.size_multiple == 0
        assert min(image.shape[-2:]) >= self.min_size
        return self.inpaint_raw(image, mask)


def _pair(h, w):
    image = torch.rand(1, 3, h, w)
    mask = torch.zeros(1, 1, h, w)
    mask[..., h // 4 : h // 2, w // 4 : w // 2] = 1
    return image, mask


@pytest.mark.parametrize(("h", "w"), [(333, 517), (64, 64), (37, 41), (9, 200)])
def test_any_size_comes_back_at_its_size_with_known_pixels_kept(h, w):
    model = Recorder()
    image, mask = _pair(h, w)
    out = Predictor(model, device="cpu")(image, mask)
    assert out["composite"].shape == image.shape
    known = (mask == 0).expand_as(image)
    assert torch.equal(out["composite"][known], image[known])
    assert torch.allclose(out["composite"][~known], torch.full_like(image, 0.5)[~known])


def test_large_image_uses_resize_and_paste_back():
    model = Recorder()
    image, mask = _pair(1500, 2000)
    out = Predictor(model, device="cpu", max_side=256)(image, mask)
    assert max(model.calls[-1]) <= 256 + 8
    assert out["composite"].shape == image.shape
    known = (mask == 0).expand_as(image)
    assert torch.equal(out["composite"][known], image[known])


def test_pad_to_multiple_reflect_and_replicate():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    y = pad_to_multiple(x, 4)
    assert y.shape[-2:] == (4, 4)
    assert torch.equal(y[..., :3, :4], x)
    tiny = torch.rand(1, 1, 1, 1)
    assert pad_to_multiple(tiny, 4).shape[-2:] == (4, 4)  # replicate where reflect cannot


def test_predictor_checks_inputs():
    model = Recorder()
    image, mask = _pair(32, 32)
    with pytest.raises(ValueError, match="does not match image"):
        Predictor(model)(image, mask[..., :16, :16])
    with pytest.raises(ValueError, match="binary"):
        Predictor(model)(image, mask * 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Predictor(model)(image * 255, mask)


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_all_known_and_all_hole_masks(fill):
    model = zoo.create_model("edgeconnect", variant="tiny")
    image = torch.rand(1, 3, 30, 30)
    mask = torch.full((1, 1, 30, 30), fill)
    out = Predictor(model, device="cpu")(image, mask)["composite"]
    assert out.shape == image.shape and torch.isfinite(out).all()
    if fill == 0.0:
        assert torch.equal(out, image)


def test_edgeconnect_odd_size_and_classical():
    image, mask = _pair(45, 61)
    out = Predictor(zoo.create_model("edgeconnect", variant="tiny"))(image, mask)
    assert out["composite"].shape == image.shape and out["edge"].shape == mask.shape
    telea = Predictor(zoo.create_model("telea"))(image, mask)
    assert telea["composite"].shape == image.shape
