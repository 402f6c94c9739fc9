"""The method contract: what every learned method declares next to its class.

A method is a subclass of :class:`~inpaintzoo.methods.base.InpaintingModule` with a
``contract = MethodContract(...)`` class attribute and the :func:`register_method` decorator
(timm-style: registration lives in the method's own module, never in a central list). The base
class consumes the declaration: it builds the networks, accepts exactly the declared options
(``<term>_weight`` for each loss term, the variant's width keys, the structure-map parameters),
captures hyperparameters, resolves and checks the stage schedule, prepares the structure maps,
writes the run notes and provides the discriminator step. The registry-wide contract tests
(``tests/test_contract.py``) read the same declaration, so a new method is covered the moment it
registers.

Example (an outline; see ``methods/edgeconnect.py`` for a real one)::

    @register_method
    class MyMethod(InpaintingModule):
        contract = MethodContract(
            name="my_method",
            paper="...", official_repo="owner/name",
            build_nets=build_my_nets, variants=MY_VARIANTS,
            official_params={"generator": 1_234_567},
            inference_nets=("generator",),
            size_multiple=8, min_size=64,
            losses={"l1": 1.0, "adversarial": 0.1},
            lr=1e-4, betas=(0.5, 0.999), gan_loss="hinge",
        )

        def training_batch(self, batch): ...
        def inpaint_raw(self, image, mask, **extras): ...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KINDS",
    "STRUCTURE_INPUTS",
    "LearningCheck",
    "MethodContract",
    "Phase",
    "Stage",
    "register_method",
    "registered_methods",
]

#: The structure maps a method may ask the base class to prepare (batch keys).
STRUCTURE_INPUTS: tuple[str, ...] = ("gray", "edge", "smooth", "gradient")
#: ``image``: (B, 3, H, W) samples; ``video``: (B, T, 3, H, W) clips (the video family).
KINDS: tuple[str, ...] = ("image", "video")


@dataclass(frozen=True)
class Stage:
    """One training stage of a staged method.

    Args:
        description: what the stage does, for run notes and error messages.
        trains: the networks this stage updates (generators and their discriminators).
        needs: networks that must already be trained when the stage starts (by an earlier
            stage of the same run, or by the checkpoint given as ``init_from``).
        fresh_optimizers: start the stage with new optimizer state for the networks it trains
            (CTSDG's fine-tuning builds new optimizers, as the official code does).
        eval_nets: networks run in eval mode during the stage: fixed networks that feed the
            trained ones (EdgeConnect's G1 in stage 3, GLCIC's completion network while its
            discriminator trains alone).
        freeze_batch_norms: keep the BatchNorms of ``InpaintingModule.frozen_batch_norms()``
            in eval mode (the PConv-style fine-tune: every generator BatchNorm by default, the
            encoders' where a method says so).
    """

    description: str
    trains: tuple[str, ...]
    needs: tuple[str, ...] = ()
    fresh_optimizers: bool = False
    eval_nets: tuple[str, ...] = ()
    freeze_batch_norms: bool = False


@dataclass(frozen=True)
class Phase:
    """One entry of the paper's schedule.

    Args:
        stage: a key of :attr:`MethodContract.stages` (``None`` for single-stage methods).
        fraction: share of the run when the length comes from ``train.max_batches`` (the
            fractions of a schedule sum to 1; every phase gets at least one batch).
        batches: the paper's own length of the phase, where stated (used when no run length is
            given).
        lr: the generator learning rate of the phase (``None``: the method's ``lr``).
    """

    stage: Any
    fraction: float
    batches: int | None = None
    lr: float | None = None


@dataclass(frozen=True)
class LearningCheck:
    """How the registry-wide "it learns" test shows that the tiny variant learns: trained on a
    fixed batch of 4 real 64 px photos with free-form holes (VGG terms off), the hole PSNR of
    the composite must rise by ``min_gain_db`` within ``batches`` batches.

    Args:
        batches, min_gain_db: the budget and the margin (measured values in the method's docs).
        stage: the stage trained (``None``: the first phase of the paper schedule, or the only
            stage).
        lr: ``None`` = the recipe's learning rate; any other value needs ``why``.
        options: other model options of the check (e.g. ``{"adversarial_weight": 0.0}`` where
            the adversarial terms swamp the reconstruction with the VGG terms off); need ``why``.
        why: why the check does not run at the recipe's rate or with the recipe's options.
    """

    batches: int = 30
    min_gain_db: float = 2.0
    stage: Any = None
    lr: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""

    def __post_init__(self) -> None:
        if (self.lr is not None or self.options) and not self.why:
            raise ValueError(
                "a learning check off the recipe's learning rate or options must say why"
            )


@dataclass(frozen=True)
class MethodContract:
    """Everything the zoo needs to know about a learned method, declared once.

    Args:
        name: registry name (the API: configs, CLI, results and docs use it).
        paper, official_repo: citation and the official code (``owner/name``).
        build_nets: ``build_nets(variant, **width_overrides) -> {attribute: nn.Module}``; the
            base class sets each network as an attribute of the module.
        variants: ``{variant: {width option: default}}`` (``full`` = the official sizes,
            ``tiny`` = CPU tests and demos); the width options are accepted as constructor
            options.
        official_params: full-size parameter count of each network (the nets module's
            ``OFFICIAL_PARAM_COUNTS``: one source of truth).
        inference_nets: the networks of the inference model (exported, counted, compiled).
        size_multiple, min_size: input sizes the full networks accept (the predictor pads to
            the multiple and resizes up below the minimum). A variant may change them
            (:meth:`sizes`).
        losses: ``{term: paper weight}``; each is a constructor option ``<term>_weight``.
        lr, betas, d2g_lr: Adam settings of the paper (discriminator rate = ``d2g_lr * lr``).
        gan_loss: the recipe's adversarial loss kind (:class:`~inpaintzoo.losses.AdversarialLoss`).
        stages: ``{key: Stage}`` for staged methods; empty for single-stage ones.
        paper_schedule: the paper's phases in order (``stage`` keys, fractions, lengths, rates).
        structure_inputs: structure maps the base class prepares in each batch, among
            :data:`STRUCTURE_INPUTS`.
        structure_params: the recipe's own structure-map parameters at its training size,
            e.g. ``{"canny_sigma": 2.0}``. Each is a constructor option; sigmas are in pixels
            at the recipe's size and are multiplied by the ``structure_scale`` option, which an
            experiment at another image size sets (0.5 at 64 px: EdgeConnect's Canny sigma 2
            at 256 px becomes 1).
        vgg_terms: loss terms that need an ImageNet VGG (switched off with
            ``perceptual_backbone=off``, said in the run notes).
        value_range: the official networks' working range (the public boundary is always
            ``[0, 1]``; a network that works in ``[-1, 1]`` converts inside).
        kind: ``image`` or ``video``.
        guidance: optional user guidance inputs ``inpaint`` accepts (e.g. ``edge_sketch``).
        notes: fixed differences from the official code worth repeating in every result.
        onnx: ``None`` when the inference networks export to ONNX; otherwise why they do not
            (the exporter raises a clear error naming it).
        learning: the registry-wide learning check (:class:`LearningCheck`).
        official_reader: for methods whose authors released PyTorch weights, a function
            ``reader(path) -> inpaintzoo.official.importers.OfficialWeights`` that reads the
            release as the authors publish it (see docs/OFFICIAL_WEIGHTS.md).
        official_release: where the authors publish those weights (a URL and the file names).
        sizes: optional ``sizes(width_options) -> (size_multiple, min_size)`` for variants whose
            depth changes the size rules (CTSDG's tiny variant has fewer levels).
    """

    name: str
    paper: str
    official_repo: str
    build_nets: Callable[..., dict[str, Any]]
    variants: Mapping[str, Mapping[str, Any]]
    official_params: Mapping[str, int]
    inference_nets: tuple[str, ...]
    size_multiple: int
    min_size: int
    losses: Mapping[str, float]
    lr: float
    betas: tuple[float, float]
    gan_loss: str
    d2g_lr: float = 1.0
    stages: Mapping[Any, Stage] = field(default_factory=dict)
    paper_schedule: tuple[Phase, ...] = ()
    structure_inputs: tuple[str, ...] = ()
    structure_params: Mapping[str, float] = field(default_factory=dict)
    vgg_terms: tuple[str, ...] = ()
    value_range: str = "[0,1]"
    kind: str = "image"
    guidance: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    onnx: str | None = None
    learning: LearningCheck = field(default_factory=LearningCheck)
    official_reader: Callable[[Any], Any] | None = None
    official_release: str = ""
    sizes: Callable[[Mapping[str, Any]], tuple[int, int]] | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} not in {KINDS}")
        unknown = set(self.structure_inputs) - set(STRUCTURE_INPUTS)
        if unknown:
            problems.append(f"unknown structure inputs {sorted(unknown)}")
        if "full" not in self.variants:
            problems.append("variants need a 'full' entry (the official sizes)")
        for phase in self.paper_schedule:
            if self.stages and phase.stage not in self.stages:
                problems.append(f"paper_schedule names unknown stage {phase.stage!r}")
        if self.paper_schedule and abs(sum(p.fraction for p in self.paper_schedule) - 1) > 1e-6:
            problems.append("paper_schedule fractions must sum to 1")
        for key, stage in self.stages.items():
            if not stage.trains:
                problems.append(f"stage {key!r} trains nothing")
            both = set(stage.trains) & set(stage.eval_nets)
            if both:
                problems.append(f"stage {key!r} trains its eval-mode networks {sorted(both)}")
        if problems:
            raise ValueError(f"bad contract for {self.name!r}: " + "; ".join(problems))

    def sizes_for(self, variant_options: Mapping[str, Any]) -> tuple[int, int]:
        """``(size_multiple, min_size)`` of a variant with its resolved width options."""
        if self.sizes is not None:
            return self.sizes(variant_options)
        return self.size_multiple, self.min_size

    def stage_label(self, key: Any) -> str:
        """``"1 (edge)"``-style label of a stage key."""
        if key is None:
            return "single stage"
        stage = self.stages.get(key)
        if stage is None or stage.description == str(key):
            return str(key)
        return f"{key} ({stage.description})"


_METHODS: dict[str, type] = {}


def register_method(cls: type) -> type:
    """Class decorator: register a method under ``cls.contract.name`` (its module's import
    registers it; :mod:`inpaintzoo.zoo` imports every module of ``inpaintzoo.methods``)."""
    contract = getattr(cls, "contract", None)
    if not isinstance(contract, MethodContract):
        raise TypeError(f"{cls.__name__} needs a `contract = MethodContract(...)` class attribute")
    existing = _METHODS.get(contract.name)
    if existing is not None and existing.__qualname__ != cls.__qualname__:
        raise ValueError(f"method {contract.name!r} is already registered by {existing!r}")
    _METHODS[contract.name] = cls
    return cls


def registered_methods() -> dict[str, type]:
    """``{name: class}`` of the methods registered so far (:func:`inpaintzoo.zoo.list_models`
    imports every method module first)."""
    return dict(_METHODS)
