"""Shared fixtures. Tests stay fast: 64 px images, tiny widths, few steps, CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("INPAINTZOO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))
    yield


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; the test skips with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (set INPAINTZOO_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def celeba64(shared_data: Path) -> Path:
    root = shared_data / "celeba64"
    if not root.is_dir():
        pytest.skip(f"celeba64 not found at {root}")
    return root


@pytest.fixture
def nvidia_masks(shared_data: Path) -> Path:
    root = shared_data / "nvidia_masks"
    if not root.is_dir():
        pytest.skip(f"NVIDIA masks not found at {root}")
    return root
