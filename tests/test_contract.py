"""The method contract, tested over the whole registry.

Every learned method in ``zoo.list_models(kind="learned")`` is covered the moment it registers:
its declaration is consistent, its full-size networks have the official parameter counts, its
config is its recipe, it trains through the CLI, its output ignores the hole's pixels, it
round-trips a checkpoint, the predictor handles odd sizes with known pixels bit-exact, it
exports (or refuses with its documented reason), and it learns on a fixed batch. Each method's
own test file keeps only the facts of that method.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from helpers import demo_run_overrides, embedded_batch, fit, hole_psnr
from inpaintzoo import zoo
from inpaintzoo.methods.base import StageRequirementError, UnknownOptionError

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
LEARNED = zoo.list_models(kind="learned")
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _pairs() -> list[tuple[str, str]]:
    """Every (model, experiment) pair a user can run: an experiment named ``<method>_<dataset>``
    belongs to that method only (DESIGN.md), the others to every method."""
    owner = {e: m for e in EXPERIMENTS for m in LEARNED if e.startswith(f"{m}_")}
    return [(m, e) for m in LEARNED for e in EXPERIMENTS if owner.get(e, m) == m]


def contract(name: str):
    return zoo.get_method_class(name).contract


def tiny(name: str, **options):
    """The tiny variant as the 64 px experiments run it: VGG terms off, sigmas for 64 px."""
    options.setdefault("perceptual_backbone", "off")
    options.setdefault("structure_scale", 0.5)
    return zoo.create_model(name, variant="tiny", **options)


def compose_cfg(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def batch():
    return embedded_batch(n=4, size=64, seed=3)


def test_the_registry_has_the_landed_methods():
    assert {"edgeconnect", "ctsdg", "structure_knowledge", "structureflow"} <= set(LEARNED)


# ----------------------------------------------------------------------------- declaration
@pytest.mark.parametrize("name", LEARNED)
def test_full_size_counts_equal_the_official_counts(name):
    c = contract(name)
    with torch.device("meta"):
        model = zoo.create_model(name)
    assert c.official_params, "the contract must declare the official parameter counts"
    assert set(c.official_params) <= set(model.net_names)
    for net, expected in c.official_params.items():
        assert count(getattr(model, net)) == expected, net
    assert set(c.inference_nets) <= set(model.net_names)
    assert model.num_parameters() == sum(count(getattr(model, n)) for n in c.inference_nets)
    assert zoo.get_model_info(name).official_params == dict(c.official_params)


@pytest.mark.parametrize("name", LEARNED)
def test_declaration_is_consistent(name):
    c = contract(name)
    assert c.name == name and c.kind in ("image", "video") and c.paper and c.official_repo
    assert c.size_multiple >= 1 and c.min_size >= 1
    with torch.device("meta"):
        nets = set(zoo.create_model(name).net_names)
    for key, stage in c.stages.items():
        assert set(stage.trains) <= nets and set(stage.needs) <= nets, key
    if c.stages:
        # the paper schedule trains every stage a later one needs, in order
        trained: set[str] = set()
        for phase in c.paper_schedule:
            assert set(c.stages[phase.stage].needs) <= trained, phase
            trained |= set(c.stages[phase.stage].trains)
    assert set(c.vgg_terms) <= set(c.losses)
    assert "full" in c.variants and "tiny" in c.variants


@pytest.mark.parametrize("name", LEARNED)
def test_unknown_options_are_refused_with_a_suggestion(name):
    term = next(iter(contract(name).losses))
    misspelled = f"{term}_wieght"
    with pytest.raises(UnknownOptionError, match=rf"{misspelled}.*did you mean '{term}_weight'"):
        tiny(name, **{misspelled: 1.0})
    with pytest.raises(ValueError, match="variant"):
        zoo.create_model(name, variant="huge")


@pytest.mark.parametrize("name", LEARNED)
def test_model_config_is_the_recipe_and_every_key_is_an_option(name):
    cfg = compose_cfg("train", [f"model={name}", "run_dir=/tmp/unused"])
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    assert model_cfg.pop("name") == name
    cls = zoo.get_method_class(name)
    options = cls.accepted_options()
    assert set(model_cfg) == set(options), "conf/model keys must be exactly the options"
    with torch.device("meta"):
        model = zoo.create_model(name, variant="full")
    for key, value in model_cfg.items():
        if key in model.hparams:
            got = value if not isinstance(value, list) else list(value)
            assert got == model.hparams[key], key  # the yaml equals the contract's recipe


@pytest.mark.parametrize(("name", "experiment"), _pairs())
def test_every_model_composes_with_every_experiment(name, experiment):
    cfg = compose_cfg("train", [f"experiment={experiment}", f"model={name}", "run_dir=/tmp/x"])
    options = OmegaConf.to_container(cfg.model, resolve=True)
    options.pop("name")
    variant = options.pop("variant")
    with torch.device("meta"):
        model = zoo.create_model(name, variant=variant, **options)
    assert model.method_name == name


# ----------------------------------------------------------------------------- schedules
@pytest.mark.parametrize("name", LEARNED)
def test_the_default_run_trains_the_whole_paper_schedule(name):
    c = contract(name)
    model = tiny(name)
    schedule = model.resolve_schedule(40)
    if c.paper_schedule:
        assert sum(e["batches"] for e in schedule) == 40
    if c.stages:
        assert [e["stage"] for e in schedule] == [p.stage for p in c.paper_schedule]
        assert all(e["batches"] > 0 for e in schedule)
    model.check_stage_requirements()  # a default run never trains on an untrained predecessor
    assert model.schedule_note() and "schedule" in " ".join(model.run_notes())


@pytest.mark.parametrize("name", LEARNED)
def test_a_stage_that_needs_a_trained_predecessor_refuses_to_start_without_one(name):
    c = contract(name)
    needy = [k for k, s in c.stages.items() if s.needs]
    if not c.stages:
        with pytest.raises(ValueError, match="unknown .* stage"):
            tiny(name, stage=1)
        return
    for key in needy:
        model = tiny(name, stage=key)
        with pytest.raises(StageRequirementError, match="init_from"):
            model.check_stage_requirements()
        model.trained_batches = {n: 1 for n in c.stages[key].needs}  # as init_from gives
        model.check_stage_requirements()


def _staged_with_modes() -> list[tuple[str, object]]:
    return [
        (name, key)
        for name in LEARNED
        for key, stage in contract(name).stages.items()
        if stage.eval_nets or stage.freeze_batch_norms
    ]


@pytest.mark.parametrize(("name", "stage"), _staged_with_modes())
def test_each_stage_runs_its_networks_in_the_declared_modes(name, stage):
    """A stage's ``eval_nets`` run in eval mode and, with ``freeze_batch_norms``, the method's
    frozen BatchNorms too, at every batch (evaluation in between switches every mode back)."""
    declared = contract(name).stages[stage]
    model = tiny(name, stage=stage)
    frozen = model.frozen_batch_norms() if declared.freeze_batch_norms else []
    if declared.freeze_batch_norms:
        assert frozen, "a stage freezes BatchNorms but the method has none to freeze"
    for _ in range(2):
        model.train()  # what Lightning does after a validation loop
        model.on_train_batch_start({}, 0)
        for net in model.net_names:
            assert getattr(model, net).training == (net not in declared.eval_nets), net
        assert all(not bn.training for bn in frozen)
        if declared.freeze_batch_norms:  # the other BatchNorms of the trained networks train
            others = [
                m
                for net in declared.trains
                for m in getattr(model, net).modules()
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                and all(m is not f for f in frozen)
            ]
            assert all(m.training for m in others)


# ----------------------------------------------------------------------------- behaviour
@pytest.mark.parametrize("name", LEARNED)
def test_trains_and_evaluates_through_the_cli(name, tmp_path):
    from inpaintzoo.cli.train import run_train

    summary = run_train(compose_cfg("train", demo_run_overrides(name, tmp_path)))
    assert summary["batches"] == 4
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["method"] == name and results["protocol"]["num_samples"] == 4
    notes = " ".join(results["notes"])
    assert "VGG-based losses switched off" in notes or not contract(name).vgg_terms
    if contract(name).stages:
        assert "schedule in batches" in notes  # the schedule actually run
    ckpt = torch.load(tmp_path / "checkpoints/last.ckpt", weights_only=True)
    assert ckpt["inpaintzoo"]["batches_seen"] == 4
    assert sum(ckpt["inpaintzoo"]["trained_batches"].values()) > 0


@pytest.mark.parametrize("name", LEARNED)
def test_output_does_not_depend_on_the_hole_pixels(name, batch):
    model = tiny(name).eval()
    image, mask = batch["image"], batch["mask"]
    hole = mask.expand_as(image) > 0
    other = image.clone()
    other[hole] = torch.rand_like(other)[hole]
    a = model.inpaint(image, mask)
    b = model.inpaint(other, mask)
    torch.testing.assert_close(a["output"], b["output"], atol=1e-5, rtol=0)
    known = ~hole
    assert torch.equal(a["composite"][known], image[known])


@pytest.mark.parametrize("name", LEARNED)
def test_checkpoint_round_trip(name, batch, tmp_path):
    import pytorch_lightning as pl

    model = tiny(name)
    model.resolve_schedule(8)
    model.batches_seen = 3
    model.trained_batches = {n: 3 for n in model.net_names}
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = zoo.load_checkpoint(path, expected=name)
    assert loaded.variant == "tiny" and loaded.batches_seen == 3
    assert loaded.schedule == model.schedule and loaded.current_stage() == model.current_stage()
    assert loaded.trained_batches == model.trained_batches
    model.eval()
    torch.testing.assert_close(
        model.inpaint(batch["image"], batch["mask"])["composite"],
        loaded.inpaint(batch["image"], batch["mask"])["composite"],
    )
    with pytest.raises(ValueError, match="requested"):
        zoo.load_checkpoint(path, expected="telea")


@pytest.mark.parametrize("name", LEARNED)
def test_predictor_at_an_odd_size_keeps_known_pixels_bit_exact(name):
    from inpaintzoo.predictor import Predictor

    torch.manual_seed(1)
    h, w = 45, 71
    image = torch.rand(1, 3, h, w)
    mask = torch.zeros(1, 1, h, w)
    mask[..., 10:30, 20:50] = 1
    out = Predictor(tiny(name), device="cpu")(image, mask)
    assert out["composite"].shape == image.shape
    known = (mask == 0).expand_as(image)
    assert torch.equal(out["composite"][known], image[known])
    assert torch.isfinite(out["composite"]).all()


@pytest.mark.parametrize("name", LEARNED)
def test_exports_to_safetensors_and_onnx_or_refuses_with_its_reason(name, batch, tmp_path):
    from inpaintzoo.export import export_onnx, export_safetensors, load_safetensors

    model = tiny(name).eval()
    export_safetensors(model, tmp_path / "weights.safetensors")
    again = load_safetensors(tmp_path / "weights.safetensors", expected=name)
    torch.testing.assert_close(
        model.inpaint(batch["image"], batch["mask"])["composite"],
        again.inpaint(batch["image"], batch["mask"])["composite"],
    )
    reason = contract(name).onnx
    if reason is None:
        manifest = export_onnx(model, tmp_path / "onnx", size=64)
        assert set(manifest["nets"]) == set(contract(name).inference_nets)
    else:
        with pytest.raises(RuntimeError, match="does not export to ONNX"):
            export_onnx(model, tmp_path / "onnx", size=64)


@pytest.mark.parametrize("name", LEARNED)
def test_learns_on_a_fixed_batch(name, batch):
    """Hole PSNR of the composite rises by the contract's margin (its LearningCheck: stage,
    batches, and the recipe's learning rate unless it says why not)."""
    check = contract(name).learning
    options = dict(check.options) if check.lr is None else {**check.options, "lr": check.lr}
    stage = check.stage if check.stage is not None else None
    if stage is not None:
        options["stage"] = stage
    torch.manual_seed(0)
    model = tiny(name, **options)
    if stage is None and model.schedule_spec == "paper":
        model.resolve_schedule(10**6)  # the first phase of the paper schedule throughout

    def score() -> float:
        model.eval()
        with torch.no_grad():
            extras = model.inference_extras(model.prepare_batch(batch))
            out = model.inpaint(batch["image"], batch["mask"], **extras)["composite"]
        model.train()
        return hole_psnr(out, batch["image"], batch["mask"])

    prepared = model.prepare_batch(batch)  # structure maps once (RTV is ~1 s a batch)
    before = score()
    fit(model, prepared, check.batches)
    after = score()
    assert after > before + check.min_gain_db, (before, after)
