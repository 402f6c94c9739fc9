"""inpaintzoo.metrics: PSNR/SSIM/L1 (vs scikit-image), confidence intervals, binning, LPIPS."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import skimage
import torch
from PIL import Image, ImageFilter
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inpaintzoo.losses import MissingWeightsError
from inpaintzoo.metrics import (
    BinnedMetrics,
    LPIPSMetric,
    l1_percent,
    lpips_availability,
    mean_ci95,
    per_image_metrics,
    psnr,
    psnr_batch,
    ssim,
)

DATA = Path(skimage.__file__).parent / "data"


def photo_pair(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(degraded, original) RGB photos from scikit-image's data files (loaded with PIL)."""
    originals, degraded = [], []
    for name in ("astronaut.png", "coffee.png"):
        image = Image.open(DATA / name).convert("RGB").resize((size, size), Image.BILINEAR)
        blurred = image.filter(ImageFilter.GaussianBlur(1.2))
        originals.append(torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0))
        degraded.append(torch.from_numpy(np.asarray(blurred, dtype=np.float32) / 255.0))
    to_batch = lambda images: torch.stack(images).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return to_batch(degraded), to_batch(originals)


def random_pair(batch: int = 3, size: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(batch, 3, size, size, generator=generator)
    noise = 0.1 * torch.randn(batch, 3, size, size, generator=generator)
    return (target + noise).clamp(0, 1), target


PAIRS = {"random": random_pair, "photo": photo_pair}


def np_image(x: torch.Tensor) -> np.ndarray:
    return x.double().numpy()  # (C, H, W)


@pytest.mark.parametrize("pair", list(PAIRS))
def test_psnr_matches_skimage(pair):
    pred, target = PAIRS[pair]()
    ours = psnr(pred, target)
    assert ours.shape == (pred.shape[0],)
    for i in range(pred.shape[0]):
        ref = peak_signal_noise_ratio(np_image(target[i]), np_image(pred[i]), data_range=1.0)
        assert abs(float(ours[i]) - ref) < 1e-4
    assert torch.equal(psnr(pred, target, variant="lbam"), ours)
    assert math.isinf(float(psnr(target, target)[0]))


@pytest.mark.parametrize("pair", list(PAIRS))
def test_ssim_skimage_variant_matches_skimage(pair):
    pred, target = PAIRS[pair]()
    ours = ssim(pred, target, variant="skimage")
    for i in range(pred.shape[0]):
        ref = structural_similarity(
            np_image(target[i]),
            np_image(pred[i]),
            data_range=1.0,
            channel_axis=0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        assert abs(float(ours[i]) - ref) < 1e-4


@pytest.mark.parametrize("pair", list(PAIRS))
def test_ssim_default_is_torchmetrics_per_image(pair):
    from torchmetrics.functional.image import structural_similarity_index_measure

    pred, target = PAIRS[pair]()
    ours = ssim(pred, target)
    assert ours.shape == (pred.shape[0],)
    for i in range(pred.shape[0]):
        ref = structural_similarity_index_measure(
            pred[i : i + 1].double(), target[i : i + 1].double(), data_range=1.0
        )
        assert abs(float(ours[i]) - float(ref)) < 1e-5
    # torchmetrics keeps the reflect-padded border in the mean: close to, not equal to, skimage
    # (measured up to 7e-3 at 64 px on the photo pair)
    assert (ours - ssim(pred, target, variant="skimage")).abs().max() < 2e-2
    assert torch.allclose(ssim(target, target), torch.ones(pred.shape[0]))


def lbam_ssim_reference(pred: np.ndarray, target: np.ndarray) -> float:
    """Independent numpy/scipy version of LBAM's pytorch_ssim on 255-scaled images."""
    coords = np.arange(11) - 5
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    g /= g.sum()
    window = np.outer(g, g)
    x, y = pred * 255.0, target * 255.0
    values = []
    for c in range(x.shape[0]):

        def blur(a):
            return ndimage.correlate(a, window, mode="constant", cval=0.0)

        mu1, mu2 = blur(x[c]), blur(y[c])
        s1 = blur(x[c] ** 2) - mu1**2
        s2 = blur(y[c] ** 2) - mu2**2
        s12 = blur(x[c] * y[c]) - mu1 * mu2
        c1, c2 = 0.01**2, 0.03**2
        values.append(
            ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
        )
    return float(np.mean(values))


@pytest.mark.parametrize("pair", list(PAIRS))
def test_ssim_lbam_variant_matches_reference(pair):
    pred, target = PAIRS[pair]()
    ours = ssim(pred, target, variant="lbam")
    assert torch.equal(ours, ssim(pred, target, variant="ctsdg"))  # alias
    for i in range(pred.shape[0]):
        ref = lbam_ssim_reference(np_image(pred[i]), np_image(target[i]))
        assert abs(float(ours[i]) - ref) < 1e-5
    assert (ours - ssim(pred, target)).abs().max() > 1e-4  # a different definition
    with pytest.raises(ValueError, match="torchmetrics"):
        ssim(pred, target, variant="matlab")


def test_psnr_batch_and_l1_percent_known_values():
    target = torch.zeros(2, 3, 4, 4)
    pred = torch.full((2, 3, 4, 4), 0.1)
    pred[1] = 0.2
    torch.testing.assert_close(l1_percent(pred, target), torch.tensor([10.0, 20.0]))
    # batch MSE = (0.01 + 0.04) / 2 = 0.025
    assert float(psnr_batch(pred, target)) == pytest.approx(10 * math.log10(1 / 0.025), rel=1e-6)
    torch.testing.assert_close(psnr(pred, target), torch.tensor([20.0, 10 * math.log10(25)]))
    pred, target = random_pair(batch=2, size=16)
    values = per_image_metrics(pred, target)
    assert set(values) == {"psnr", "ssim", "l1"}
    assert all(v.shape == (2,) for v in values.values())
    torch.testing.assert_close(values["ssim"], ssim(pred, target))


def test_mean_ci95_known_values():
    mean, half, n = mean_ci95(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    sem = float(np.std([1, 2, 3, 4], ddof=1)) / 2
    assert (mean, n) == (2.5, 4)
    assert half == pytest.approx(3.182446305284263 * sem, rel=1e-9)  # t_{0.975, 3}
    assert mean_ci95([5.0, 5.0, 5.0]) == (5.0, 0.0, 3)
    mean, half, n = mean_ci95([7.0])
    assert mean == 7.0 and math.isnan(half) and n == 1
    mean, half, n = mean_ci95([])
    assert math.isnan(mean) and math.isnan(half) and n == 0


class ToyBins:
    """Duck-typed stand-in for inpaintzoo.masks.HoleRatioBins (0-20 %, 20-40 %)."""

    labels = ["0-20%", "20-40%"]

    def index(self, ratio: float) -> int:
        if 0.0 <= ratio < 0.2:
            return 0
        if 0.2 <= ratio <= 0.4:
            return 1
        return -1


def test_binned_metrics_summary_structure_and_values():
    binned = BinnedMetrics(ToyBins(), na_reasons={"lpips_alex": "no backbone weights"})
    binned.update(
        {"psnr": torch.tensor([20.0, 30.0]), "ssim": torch.tensor([0.5, 0.7])},
        torch.tensor([0.1, 0.3]),
    )
    binned.update(
        {"psnr": torch.tensor([22.0, 40.0]), "ssim": torch.tensor([0.6, 0.9])},
        torch.tensor([0.15, 0.9]),  # 0.9: outside every bin -> overall only
    )
    summary = binned.summary()
    assert set(summary) == {"overall", "bins"}
    assert list(summary["bins"]) == ["0-20%", "20-40%"]
    overall = summary["overall"]
    assert overall["psnr"]["n"] == 4 and overall["psnr"]["mean"] == pytest.approx(28.0)
    assert overall["psnr"]["ci95"] == pytest.approx(mean_ci95([20.0, 30.0, 22.0, 40.0])[1])
    assert summary["bins"]["0-20%"]["psnr"] == {
        "mean": pytest.approx(21.0),
        "ci95": pytest.approx(mean_ci95([20.0, 22.0])[1]),
        "n": 2,
    }
    assert summary["bins"]["20-40%"]["ssim"] == {"mean": pytest.approx(0.7), "ci95": None, "n": 1}
    na = {"mean": None, "ci95": None, "n": 0, "na_reason": "no backbone weights"}
    assert overall["lpips_alex"] == na and summary["bins"]["0-20%"]["lpips_alex"] == na
    assert binned.num_images == 4
    # states as torchmetrics leaves them after a DDP sync (concatenated tensors) give the same
    synced = BinnedMetrics(ToyBins(), na_reasons={"lpips_alex": "no backbone weights"})
    synced.update({"psnr": torch.zeros(1), "ssim": torch.zeros(1)}, torch.zeros(1))
    synced.hole_ratio = torch.tensor([0.1, 0.3, 0.15, 0.9]).double()
    synced.values_psnr = torch.tensor([20.0, 30.0, 22.0, 40.0]).double()
    synced.values_ssim = torch.tensor([0.5, 0.7, 0.6, 0.9]).double()
    assert synced.compute() == summary
    import json

    json.dumps(summary, allow_nan=False)  # JSON-ready: no NaN


def test_binned_metrics_mask_ratio_keys_and_reset():
    binned = BinnedMetrics(ToyBins(), metrics=("l1",))
    mask = torch.zeros(2, 1, 10, 10)
    mask[0, :, :1] = 1  # 10 %
    mask[1, :, :3] = 1  # 30 %
    binned.update({"l1": torch.tensor([1.0, 2.0])}, mask)
    summary = binned.summary()
    assert summary["bins"]["0-20%"]["l1"]["mean"] == 1.0
    assert summary["bins"]["20-40%"]["l1"]["mean"] == 2.0
    with pytest.raises(KeyError):
        binned.update({"psnr": torch.tensor([1.0])}, torch.tensor([0.1]))
    binned.reset()
    assert binned.num_images == 0


def test_binned_metrics_default_bins_from_masks_package():
    pytest.importorskip("inpaintzoo.masks")
    binned = BinnedMetrics()
    assert list(binned.bins.labels) == ["0-20%", "20-40%", "40-60%"]


@pytest.fixture
def hub_dir(tmp_path):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_not_available_without_backbone_file(hub_dir, net):
    ok, reason = lpips_availability(net)
    assert not ok
    filename = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}[net]
    assert str(hub_dir / "checkpoints" / filename) in reason
    with pytest.raises(MissingWeightsError, match=filename):
        LPIPSMetric(net, weights="imagenet")


def test_lpips_code_path_with_random_backbone():
    metric = LPIPSMetric("alex", weights="random")
    assert metric.key == "lpips_alex"
    x = torch.rand(2, 3, 64, 64)
    same = metric(x, x)
    assert same.shape == (2,) and same.abs().max() < 1e-6
    different = metric(x, torch.rand(2, 3, 64, 64))
    assert (different > 0).all()
    assert not metric.state_dict()
    assert not any(p.requires_grad for p in metric.parameters())
