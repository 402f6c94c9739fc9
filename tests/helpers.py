"""Small builders shared by tests (real photos from the embedded samples, fixed masks)."""

from __future__ import annotations

import numpy as np
import torch


def embedded_batch(n: int = 4, size: int = 64, seed: int = 0) -> dict[str, torch.Tensor]:
    """A fixed batch: centre crops of embedded training photos with seeded free-form masks."""
    from inpaintzoo.data import embedded_split, image_to_tensor, read_image
    from inpaintzoo.masks import free_form_mask

    train_files, _ = embedded_split()
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for i in range(n):
        array = read_image(train_files[i % len(train_files)])
        h, w = array.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        crop = image_to_tensor(array[top : top + s, left : left + s])
        crop = torch.nn.functional.interpolate(crop[None], size=(size, size), mode="area")[0].clamp(
            0, 1
        )
        images.append(crop)
        mask = free_form_mask(size, size, rng)
        while not 0.1 <= mask.mean() <= 0.5:
            mask = free_form_mask(size, size, rng)
        masks.append(torch.from_numpy(mask)[None])
    return {"image": torch.stack(images), "mask": torch.stack(masks).float()}


def hole_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB, data range 1) over the hole pixels only."""
    m = mask.expand_as(pred)
    mse = ((pred - target) ** 2 * m).sum() / m.sum().clamp_min(1)
    return float(10 * torch.log10(1.0 / mse.clamp_min(1e-10)))


class FixedBatch(torch.utils.data.Dataset):
    """The samples of one batch dict, the same every epoch (overfit-a-batch tests)."""

    def __init__(self, batch: dict[str, torch.Tensor]) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch["image"])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.batch.items()}


def fit(model, batch: dict[str, torch.Tensor], batches: int, callbacks=(), **trainer_kwargs):
    """Train ``model`` for ``batches`` batches on ``batch`` through a real CPU ``pl.Trainer``."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from inpaintzoo.callbacks import BatchBudget

    loader = DataLoader(FixedBatch(batch), batch_size=len(batch["image"]), shuffle=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[BatchBudget(batches), *callbacks],
        **trainer_kwargs,
    )
    trainer.fit(model, train_dataloaders=loader)
    return trainer


def demo_run_overrides(model: str, run_dir, *extra: str) -> list[str]:
    """Hydra overrides of a 4-batch ``experiment=demo`` training + evaluation into ``run_dir``
    (the CLI round trip of the contract tests; 4 batches give every phase of a 3-stage paper
    schedule at least one batch), plus the method's ``extra`` overrides."""
    return [
        "experiment=demo",
        f"model={model}",
        "callbacks=none",
        "train.max_batches=4",
        "train.ckpt_every_batches=4",
        "train.val_every_batches=4",
        "train.limit_val_batches=1",
        "protocol.num_samples=4",
        "evaluate.batch_size=4",
        "evaluate.grid_samples=2",
        "evaluate.compare=[]",
        "trainer.enable_progress_bar=false",
        f"run_dir={run_dir}",
        *extra,
    ]
