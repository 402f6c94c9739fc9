"""Inference options given at load time (``model_options``): GLCIC's post-processing through
the predictor, ``inpaintzoo-predict`` and ``inpaintzoo-eval`` (label and cache key included)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import embedded_batch, fit
from inpaintzoo import zoo
from inpaintzoo.predictor import Predictor


@pytest.fixture(scope="module")
def glcic_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = zoo.create_model("glcic", variant="tiny", stage=1)  # completion network alone
    trainer = fit(model, embedded_batch(n=2, size=64, seed=1), 1)
    path = tmp_path_factory.mktemp("glcic") / "last.ckpt"
    trainer.save_checkpoint(path)
    return path


def _inputs():
    batch = embedded_batch(n=1, size=64, seed=2)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:40, 16:44] = 1
    return batch["image"], mask


def test_options_override_the_stored_ones_and_change_the_output(glcic_ckpt):
    image, mask = _inputs()
    plain = Predictor.from_file(glcic_ckpt)
    post = Predictor.from_file(glcic_ckpt, options={"postprocess": "telea_poisson"})
    assert plain.model.postprocess == "none" and post.model.postprocess == "telea_poisson"
    a, b = plain(image, mask)["composite"], post(image, mask)["composite"]
    assert torch.equal(a * (1 - mask), b * (1 - mask))  # known pixels untouched by either
    assert float((a - b).abs().max()) > 1e-3  # the blend changed the hole
    with pytest.raises(ValueError, match="postproces"):
        Predictor.from_file(glcic_ckpt, options={"postproces": "telea_poisson"})


def _write_pair(folder):
    image, mask = _inputs()
    Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(
        folder / "image.png"
    )
    Image.fromarray((mask[0, 0].numpy() * 255).astype(np.uint8)).save(folder / "mask.png")


def test_predict_cli_takes_model_options(glcic_ckpt, tmp_path):
    from hydra import compose, initialize_config_dir

    from inpaintzoo.cli.common import config_dir
    from inpaintzoo.cli.predict import run_predict

    _write_pair(tmp_path)
    outs = {}
    for name, extra in (("plain", []), ("post", ["model_options={postprocess: telea_poisson}"])):
        with initialize_config_dir(config_dir(), version_base="1.3"):
            cfg = compose(
                "predict",
                [
                    f"ckpt={glcic_ckpt}",
                    f"input.image={tmp_path / 'image.png'}",
                    f"input.mask={tmp_path / 'mask.png'}",
                    f"out={tmp_path / name}.png",
                    *extra,
                ],
            )
        run_predict(cfg)
        outs[name] = np.asarray(Image.open(tmp_path / f"{name}.png"), dtype=np.int16)
    assert np.abs(outs["plain"] - outs["post"]).max() > 0


def test_eval_labels_and_caches_rows_by_their_options(glcic_ckpt, tmp_path):
    from hydra import compose, initialize_config_dir

    from inpaintzoo.cli.common import config_dir
    from inpaintzoo.cli.eval import run_eval

    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose(
            "eval",
            [
                f"paths.output_root={tmp_path}",
                f"methods=[glcic:{glcic_ckpt}]",
                "model_options={glcic: {postprocess: telea_poisson}}",
                "lpips=off",
                "fid=false",
            ],
        )
        plain_cfg = compose(
            "eval",
            [f"paths.output_root={tmp_path}", f"methods=[glcic:{glcic_ckpt}]", "lpips=off",
             "fid=false"],
        )  # fmt: skip
    (post,) = run_eval(cfg)
    (plain,) = run_eval(plain_cfg)  # same cache folder: must not reuse the post-processed rows
    assert post["label"] == "glcic (postprocess=telea_poisson)" and plain["label"] == "glcic"
    a, b = post["metrics"]["overall"]["psnr"]["mean"], plain["metrics"]["overall"]["psnr"]["mean"]
    assert a != b
    written = sorted(p.name for p in (tmp_path / "eval" / "smoke").glob("results_*.json"))
    assert len(written) == 2, written
    assert json.loads((tmp_path / "eval" / "smoke" / written[1]).read_text())["label"]


def test_eval_refuses_options_for_a_method_it_does_not_evaluate(tmp_path):
    from hydra import compose, initialize_config_dir

    from inpaintzoo.cli.common import config_dir
    from inpaintzoo.cli.eval import run_eval

    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose(
            "eval",
            [f"paths.output_root={tmp_path}", "methods=[telea]", "model_options={glcic: {a: 1}}"],
        )
    with pytest.raises(ValueError, match="model_options for glcic, which is not among"):
        run_eval(cfg)
