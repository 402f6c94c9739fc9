"""Sample grids reach every kind of logger; debug presets compose and run."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from hydra import compose, initialize_config_dir
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from inpaintzoo.methods.logging import grid_tensor, log_sample_grid
from test_cli import CONF, FAST


def _columns():
    return {
        "masked input": torch.rand(3, 3, 16, 16),
        "edges": torch.rand(3, 1, 16, 16),
        "output": torch.rand(3, 3, 16, 16),
    }


def test_grid_layout_rows_are_samples():
    grid = grid_tensor(_columns())
    # 3 columns x 3 rows of 16 px tiles with 2 px padding
    assert grid.shape == (3, 2 + 3 * 18, 2 + 3 * 18)


def test_csv_and_tensorboard_loggers_receive_grids(tmp_path):
    csv = CSVLogger(tmp_path, name="csv", version="")
    tb = TensorBoardLogger(tmp_path, name="tb", version="")
    log_sample_grid(SimpleNamespace(loggers=[csv, tb]), "val/samples", _columns(), 7)
    assert (tmp_path / "csv" / "samples" / "val_samples_0000007.png").is_file()
    tb.experiment.flush()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_debug_fast_dev_run_trains_one_batch(tmp_path):
    from inpaintzoo.cli.train import run_train

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*FAST, "debug=fdr", f"run_dir={tmp_path}"])
    assert cfg.trainer.fast_dev_run is True and cfg.evaluate.enabled is False
    summary = run_train(cfg)
    assert summary["batches"] == 1
