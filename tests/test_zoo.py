"""Registry, parameter counts through the zoo, and safe checkpoint loading."""

from __future__ import annotations

import io
import pickle

import pytest
import torch

from inpaintzoo import zoo


def test_registry_lists_and_filters():
    names = zoo.list_models()
    assert {"edgeconnect", "telea", "navier_stokes"} <= set(names)
    assert zoo.list_models("edge*") == ["edgeconnect"]
    assert set(zoo.list_models(kind="classical")) == {"telea", "navier_stokes", "patchmatch"}
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        zoo.create_model("nope")


def test_full_edgeconnect_matches_official_counts_on_meta():
    with torch.device("meta"):
        model = zoo.create_model("edgeconnect")
    info = zoo.get_model_info("edgeconnect")
    for net, count in info.official_params.items():
        assert sum(p.numel() for p in getattr(model, net).parameters()) == count
    assert model.num_parameters() == 10_761_089 + 10_774_595


def test_full_model_builds_without_vgg_weights():
    # the VGG loss is built lazily at fit time, so inference/param counting never needs it
    with torch.device("meta"):
        model = zoo.create_model("edgeconnect")
    assert model._vgg_holder == []


def test_classical_entries_are_callables():
    telea = zoo.create_model("telea")
    image = torch.rand(1, 3, 16, 16)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:8, 4:8] = 1
    out = telea(image, mask)
    assert out.shape == image.shape


def _tiny_checkpoint(tmp_path, **kwargs):
    import pytorch_lightning as pl

    model = zoo.create_model("edgeconnect", variant="tiny", **kwargs)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    return model, path


def test_checkpoint_round_trip_weights_only(tmp_path):
    model, path = _tiny_checkpoint(tmp_path, stage=2, canny_sigma=1.5)
    raw = torch.load(path, map_location="cpu", weights_only=True)  # plain types only
    assert raw["hyper_parameters"]["method"] == "edgeconnect"
    assert raw["hyper_parameters"]["size_multiple"] == 4
    loaded = zoo.load_checkpoint(path, expected="edgeconnect")
    assert loaded.fixed_stage == 2 and loaded.canny_sigma == 1.5 and loaded.variant == "tiny"
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


def test_checkpoint_of_another_method_is_refused(tmp_path):
    _, path = _tiny_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="is a 'edgeconnect' checkpoint, but 'ctsdg'"):
        zoo.load_checkpoint(path, expected="ctsdg")


def test_missing_and_corrupt_checkpoints(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        zoo.load_checkpoint(tmp_path / "nope.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(RuntimeError, match="cannot read checkpoint"):
        zoo.load_checkpoint(bad)


class _Evil:
    def __reduce__(self):
        return (print, ("this would run code",))


def test_pickle_carrying_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    buffer = io.BytesIO()
    torch.save({"state_dict": {}, "payload": _Evil()}, buffer, pickle_module=pickle)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(RuntimeError, match="refusing to load"):
        zoo.load_checkpoint(path)


def test_not_an_inpaintzoo_checkpoint(tmp_path):
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="not an inpaintzoo checkpoint"):
        zoo.load_checkpoint(path)
