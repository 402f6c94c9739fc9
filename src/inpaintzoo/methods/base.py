"""``InpaintingModule``: the one shared training loop of the zoo, driven by the method contract.

Every method is a subclass with a ``contract = MethodContract(...)`` (see
:mod:`inpaintzoo.methods.contract`) that implements ``training_batch`` (the losses and stage
logic of one batch) and ``inpaint_raw`` (inference). The base class owns everything else, once:

* the options: it accepts exactly the contract's options (``<term>_weight`` for each loss term,
  the variant's width keys, the structure-map parameters) plus the shared ones below and the
  subclass's own keyword arguments, and rejects anything else with a clear error (a misspelled
  option is never silently ignored); hyperparameters are captured as plain Python types
  (``torch.load(weights_only=True)`` reads them) with the method name, variant, size rules and
  value range;
* the networks (built from the contract and set as attributes) and their optimizers;
* the schedule: the paper's stage order with lengths scaled to the run (``schedule="paper"``,
  the default), an explicit list of phases, or one ``stage``; a stage that needs a trained
  predecessor refuses to start without one; stages may start with fresh optimizers; the
  schedule actually run is saved in checkpoints and named in the run notes;
* structure maps (gray, Canny edges, Sobel gradients, smoothed images) prepared once per batch
  on the accelerator;
* the adversarial loss object, the standard discriminator step and one way to freeze a
  discriminator during the generator's step;
* manual optimisation (``automatic_optimization = False``) with named optimizers; a batch
  counter (``batches_seen``) saved in checkpoints (configs speak in batches, Lightning's
  ``global_step`` counts optimizer steps); gradient clipping, per-batch LR schedules, a
  non-finite loss guard;
* validation/test metrics on the composite and sample grids; VGG-based losses built lazily at fit
  start and kept out of checkpoints; run notes saying how a run differs from the paper recipe;
* speed switches (channels-last, in-place ``torch.compile`` of ``compile_nets``).
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from inpaintzoo.conventions import check_pair, composite, masked_input
from inpaintzoo.losses import AdversarialLoss, PConvLoss
from inpaintzoo.methods.contract import MethodContract
from inpaintzoo.structure import canny_edges, rgb_to_gray, sobel_gradients
from inpaintzoo.utils.hparams import to_plain_types as plain

log = logging.getLogger(__name__)

PERCEPTUAL_BACKBONES: tuple[str, ...] = ("imagenet", "random", "off")


class NonFiniteLossError(RuntimeError):
    """Raised after too many consecutive non-finite losses."""


class UnknownOptionError(ValueError):
    """A constructor option the method does not have (e.g. a misspelled loss weight)."""


class StageRequirementError(RuntimeError):
    """A stage would train on a network that no earlier stage (or ``init_from``) trained."""


def _as_args(value: Any) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def _detach(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return type(value)(_detach(v) for v in value)
    return value.detach() if torch.is_tensor(value) else value


class InpaintingModule(pl.LightningModule):
    """Base class of every learned inpainting method (see the module docstring).

    Subclasses set ``contract`` and implement :meth:`training_batch` and :meth:`inpaint_raw`;
    they may add keyword-only options of their own (captured and validated like the rest).

    Args:
        variant: a key of ``contract.variants``: ``"full"`` (the paper's widths) or ``"tiny"``
            (CPU tests and demos).
        stage: train only this stage (a key of ``contract.stages``); ``None``: the schedule.
        schedule: ``"paper"`` (the paper's stage order, lengths from ``train.max_batches`` by
            the contract's fractions, or the paper's own lengths when no run length is given),
            or a list of ``{"stage": s, "batches": n, "lr": x}`` phases (``stage`` for staged
            methods, ``lr`` optional: that phase's generator rate, discriminators at
            ``d2g_lr`` of it); after the last phase it stays in force.
        lr, betas, d2g_lr: Adam settings (``None``: the contract's, i.e. the paper's).
        weight_decay: Adam weight decay.
        grad_clip: clip each optimizer's gradient norm to this value (``None``: off).
        scheduler: ``None`` or ``{"kind": "step", "milestones": [batches...], "gamma": 0.1}``
            (per-batch multi-step decay applied to every optimizer).
        max_nonfinite: consecutive non-finite losses tolerated before stopping.
        sample_every_batches: log a sample grid every this many batches (0: only at validation).
        gan_loss: adversarial loss kind (``None``: the contract's).
        perceptual_backbone: ``imagenet`` (needs the VGG file in the torch cache), ``random``
            (timing only, logged) or ``off`` (every VGG-based term off, said in the notes).
        structure_scale: multiplies the structure maps' pixel sigmas (recipes state them at
            their training size; an experiment at 64 px for a 256 px recipe sets 0.5).
        **options: ``<term>_weight`` for each of ``contract.losses``, the variant's width keys
            (``None`` = the variant's value) and ``contract.structure_params``.
    """

    contract: ClassVar[MethodContract]
    #: the networks ``train.compile`` compiles (``None``: the inference networks, i.e. the
    #: generators; discriminators stay eager)
    compile_nets: ClassVar[tuple[str, ...] | None] = None
    #: the property that builds the VGG loss module through :meth:`lazy_vgg` (built at fit
    #: start, so missing ImageNet weights fail before the first batch)
    vgg_attribute: ClassVar[str | None] = None

    def __init__(
        self,
        variant: str = "full",
        *,
        stage: Any = None,
        schedule: Any = "paper",
        lr: float | None = None,
        betas: tuple[float, float] | None = None,
        d2g_lr: float | None = None,
        weight_decay: float = 0.0,
        grad_clip: float | None = None,
        scheduler: dict | None = None,
        max_nonfinite: int = 10,
        sample_every_batches: int = 0,
        gan_loss: str | None = None,
        perceptual_backbone: str = "imagenet",
        structure_scale: float = 1.0,
        **options: Any,
    ) -> None:
        given = self._given_arguments()
        super().__init__()
        self.automatic_optimization = False
        c = self.contract
        if variant not in c.variants:
            raise ValueError(
                f"unknown {c.name} variant {variant!r}; choose one of {sorted(c.variants)}"
            )
        if perceptual_backbone not in PERCEPTUAL_BACKBONES:
            raise ValueError(
                f"perceptual_backbone must be one of {PERCEPTUAL_BACKBONES}, got "
                f"{perceptual_backbone!r}"
            )
        self.variant = variant
        self.lr = float(c.lr if lr is None else lr)
        self.betas = tuple(float(b) for b in (c.betas if betas is None else betas))
        self.d2g_lr = float(c.d2g_lr if d2g_lr is None else d2g_lr)
        self.weight_decay = float(weight_decay)
        self.grad_clip = grad_clip
        self.scheduler_spec = plain(scheduler)
        self.max_nonfinite = int(max_nonfinite)
        self.sample_every_batches = int(sample_every_batches)
        self.gan_loss = c.gan_loss if gan_loss is None else str(gan_loss)
        self.perceptual_backbone = perceptual_backbone
        self.structure_scale = float(structure_scale)

        self.weights = {t: float(options.pop(f"{t}_weight", w)) for t, w in c.losses.items()}
        self.structure_params = {k: float(options.pop(k, v)) for k, v in c.structure_params.items()}
        width_keys = {k for v in c.variants.values() for k in v}
        widths = {k: options.pop(k) for k in list(options) if k in width_keys}
        if options:
            raise self._unknown_options(sorted(options))
        widths = {k: v for k, v in widths.items() if v is not None}

        hparams = {
            **given,
            "variant": variant,
            "lr": self.lr,
            "betas": list(self.betas),
            "d2g_lr": self.d2g_lr,
            "gan_loss": self.gan_loss,
            **{f"{t}_weight": w for t, w in self.weights.items()},
            **self.structure_params,
        }
        hparams = {k: v for k, v in hparams.items() if not (k in width_keys and v is None)}
        self.size_multiple, self.min_size = c.sizes_for({**c.variants[variant], **widths})
        hparams.update(
            method=c.name,
            size_multiple=int(self.size_multiple),
            min_size=int(self.min_size),
            value_range=c.value_range,
        )
        self.save_hyperparameters(plain(hparams))

        self.net_names: tuple[str, ...] = ()
        for name, net in c.build_nets(variant, **widths).items():
            setattr(self, name, net)
            self.net_names += (name,)
        self.adversarial_loss = AdversarialLoss(self.gan_loss)

        self.batches_seen = 0
        self.nonfinite_in_a_row = 0  # longest current streak over the optimizer groups
        self.nonfinite_total = 0
        self._nonfinite_streaks: dict[str, int] = {}
        self._optimizer_names: list[str] = []
        self._vgg_holder: list[nn.Module] = []  # see lazy_vgg
        self._l1_holder: list[nn.Module] = []  # see pconv_loss
        self._init_schedule(stage, schedule)
        # speed switches (not hyperparameters: a checkpoint does not depend on them)
        self.use_channels_last = False
        self.compile_options: dict[str, Any] | None = None
        self._speed_applied = False
        self._deferred_clip: dict[int, float] = {}
        self.val_metrics = self._make_metrics("val/")
        self.test_metrics = self._make_metrics("test/")

    # ------------------------------------------------------------------ options / metadata
    def _given_arguments(self) -> dict[str, Any]:
        """The constructor arguments of every ``__init__`` of this object on the call stack
        (the subclasses' own options and what they pass on), as given."""
        found: dict[str, Any] = {}
        frame = inspect.currentframe()
        frame = frame.f_back if frame is not None else None
        while frame is not None and frame.f_code.co_name == "__init__":
            if frame.f_locals.get("self") is not self:
                break
            info = inspect.getargvalues(frame)  # args: positional and keyword-only names
            values = {a: info.locals[a] for a in info.args if a != "self"}
            if info.keywords:
                values.update(info.locals[info.keywords])
            found = {**values, **found}  # outer (subclass) frames win
            frame = frame.f_back
        found.pop("__class__", None)
        return found

    @classmethod
    def accepted_options(cls, variant: str = "full") -> dict[str, Any]:
        """Every constructor option and its default (``None`` for width overrides)."""
        c = cls.contract
        found: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            init = klass.__dict__.get("__init__")
            if init is None or not issubclass(klass, InpaintingModule):
                continue
            for name, param in inspect.signature(init).parameters.items():
                if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                    continue
                found[name] = None if param.default is param.empty else param.default
        found.update({f"{t}_weight": w for t, w in c.losses.items()})
        found.update(c.structure_params)
        found.update({k: None for v in c.variants.values() for k in v})
        return found

    def _unknown_options(self, names: list[str]) -> UnknownOptionError:
        valid = sorted(self.accepted_options())
        parts = []
        for name in names:
            close = difflib.get_close_matches(name, valid, n=1)
            parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return UnknownOptionError(
            f"{self.contract.name} has no option {', '.join(parts)}; its options are: "
            f"{', '.join(valid)}"
        )

    @property
    def method_name(self) -> str:
        return self.contract.name

    @property
    def inference_nets(self) -> tuple[str, ...]:
        return self.contract.inference_nets

    @property
    def value_range(self) -> str:
        return self.contract.value_range

    @property
    def canny_sigma(self) -> float:
        """The Canny sigma in pixels of this run (the recipe's times ``structure_scale``)."""
        return self.structure_params.get("canny_sigma", 2.0) * self.structure_scale

    @staticmethod
    def _make_metrics(prefix: str) -> MetricCollection:
        return MetricCollection(
            {
                "psnr": PeakSignalNoiseRatio(data_range=1.0),
                "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
                "l1": MeanAbsoluteError(),
            },
            prefix=prefix,
        )

    def num_parameters(self, nets: Iterable[str] | None = None) -> int:
        """Parameter count of the inference networks (or of the named ones)."""
        names = tuple(nets) if nets is not None else self.inference_nets
        return sum(p.numel() for n in names for p in getattr(self, n).parameters())

    # ------------------------------------------------------------------ speed switches
    def configure_speed(
        self, channels_last: bool = False, compile: bool | Mapping[str, Any] = False
    ) -> InpaintingModule:
        """Ask for channels-last memory format and/or ``torch.compile`` of ``compile_nets``.

        Both are applied once, in :meth:`setup` (before Lightning moves the module to its device
        and wraps it in DDP), or right away by :meth:`apply_speed_switches`. ``compile`` is
        ``True`` or a dict of ``torch.compile`` keyword arguments (``mode``, ``dynamic``, ...).
        Compilation is in place (``nn.Module.compile``): state-dict keys do not change, so
        checkpoints stay interchangeable with eager runs.
        """
        self.use_channels_last = bool(channels_last)
        if compile is True:
            self.compile_options = {}
        elif compile:
            self.compile_options = dict(plain(compile))
        else:
            self.compile_options = None
        return self

    def compiled_net_names(self) -> tuple[str, ...]:
        names = self.compile_nets if self.compile_nets is not None else self.inference_nets
        missing = [n for n in names if not isinstance(getattr(self, n, None), nn.Module)]
        if missing:
            raise AttributeError(f"{type(self).__name__}.compile_nets names no module {missing}")
        return tuple(names)

    def apply_speed_switches(self) -> None:
        """Apply the switches of :meth:`configure_speed` (idempotent)."""
        if self._speed_applied:
            return
        if self.use_channels_last:
            self.to(memory_format=torch.channels_last)
        if self.compile_options is not None:
            for name in self.compiled_net_names():
                getattr(self, name).compile(**self.compile_options)
            log.info("torch.compile of %s (%s)", self.compiled_net_names(), self.compile_options)
        self._speed_applied = True

    def setup(self, stage: str) -> None:
        self.apply_speed_switches()

    def to_memory_format(self, batch: dict[str, Any]) -> dict[str, Any]:
        """4-D tensors of ``batch`` in channels-last when that switch is on."""
        if not self.use_channels_last:
            return batch
        return {
            k: v.contiguous(memory_format=torch.channels_last)
            if torch.is_tensor(v) and v.ndim == 4
            else v
            for k, v in batch.items()
        }

    # ------------------------------------------------------------------ subclass API
    def optimizer_specs(self) -> dict[str, tuple[Iterable[nn.Parameter], float]]:
        """``{name: (parameters, lr)}`` in a fixed order; Adam with ``betas`` for each.

        Default: one optimizer per network, named after it, in the order ``build_nets`` gives
        them; inference networks (generators) at ``lr``, the others (discriminators) at
        ``lr * d2g_lr``.
        """
        d_lr = self.lr * self.d2g_lr
        return {
            name: (
                getattr(self, name).parameters(),
                self.lr if name in self.inference_nets else d_lr,
            )
            for name in self.net_names
        }

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Run one batch: compute losses and call :meth:`optimize`. Returns values to log."""
        raise NotImplementedError

    def inpaint_raw(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        """Inference on a batch whose size suits the network. Returns at least ``output``
        (B,3,H,W) in [0,1] (raw, not composited); may add e.g. ``edge``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ structure maps
    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Add the contract's ``structure_inputs`` of the full image once, on the module's
        device (not in data workers): ``gray`` (B,1,H,W), ``edge`` (Canny of gray at
        :attr:`canny_sigma`), ``gradient`` (Sobel, (B,6,H,W)), ``smooth`` (see
        :meth:`smooth_map`). Maps already in the batch are kept."""
        needs = self.contract.structure_inputs
        if not needs:
            return batch
        batch = dict(batch)
        image = batch["image"]
        if ("gray" in needs or "edge" in needs) and "gray" not in batch:
            batch["gray"] = rgb_to_gray(image)
        if "edge" in needs and "edge" not in batch:
            batch["edge"] = self.edge_map(batch["gray"])
        if "gradient" in needs and "gradient" not in batch:
            batch["gradient"] = sobel_gradients(image)
        if "smooth" in needs and "smooth" not in batch:
            batch["smooth"] = self.smooth_map(image)
        return batch

    def edge_map(self, gray: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Canny edges ``(B, 1, H, W)`` in {0, 1} at this run's sigma; with ``mask`` (1 = hole)
        in test mode: smoothing over known pixels only, no edges in or on the hole."""
        return canny_edges(gray, sigma=self.canny_sigma, mask=mask)

    def configure_rtv(
        self,
        *,
        lam: float,
        sharpness: float,
        iterations: int,
        solver: str,
        cache_dir: str | None = None,
    ) -> None:
        """Make :meth:`smooth_map` the RTV structure image (Xu et al. 2012; StructureFlow's and
        MEDFE's ``smooth``) with these parameters; sigma is the contract's ``rtv_sigma`` times
        ``structure_scale``. ``cache_dir``: an on-disk :class:`~inpaintzoo.structure.rtv.RTVCache`
        keyed by image SHA-256."""
        from inpaintzoo.structure.rtv import RTVCache

        self.rtv_params = {
            "lam": float(lam),
            "sigma": self.structure_params["rtv_sigma"] * self.structure_scale,
            "sharpness": float(sharpness),
            "iterations": int(iterations),
            "solver": str(solver),
        }
        self.rtv_cache = RTVCache(cache_dir, **self.rtv_params) if cache_dir else None

    def smooth_map(self, image: torch.Tensor) -> torch.Tensor:
        """The structure (edge-preserving smoothed) image of ``image`` (B, 3, H, W) in [0, 1],
        on its device, for methods that declare ``smooth``: RTV after :meth:`configure_rtv`."""
        params = getattr(self, "rtv_params", None)
        if params is None:
            raise NotImplementedError(f"{self.contract.name} declares no smoothing")
        if self.rtv_cache is not None:
            return self.rtv_cache(image)
        from inpaintzoo.structure.rtv import rtv_smooth

        return rtv_smooth(image, **params)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        """Inpaint ``image`` (B,3,H,W) in [0,1] where ``mask`` (B,1,H,W) is 1.

        Returns a dict with ``output`` (raw) and ``composite`` (known pixels kept), plus any
        method extras. Sizes must already suit the network; see :mod:`inpaintzoo.predictor`
        for arbitrary sizes.
        """
        check_pair(image, mask)
        # Networks only ever see the known pixels: no method can peek into the hole.
        out = self.inpaint_raw(masked_input(image, mask), mask, **extras)
        out["composite"] = composite(out["output"].clamp(0, 1), image, mask)
        return out

    def forward(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> torch.Tensor:
        return self.inpaint(image, mask, **extras)["composite"]

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        specs = self.optimizer_specs()
        self._optimizer_names = list(specs)
        return [
            self.make_optimizer(name, [p for p in params if p.requires_grad], lr)
            for name, (params, lr) in specs.items()
        ]

    def make_optimizer(
        self, name: str, params: list[nn.Parameter], lr: float
    ) -> torch.optim.Optimizer:
        """The optimizer named ``name`` (see :meth:`optimizer_specs`): Adam with ``betas`` and
        ``weight_decay``. Override for a paper that uses another (GLCIC's ADADELTA) or other
        settings for one network (LBAM's discriminator betas)."""
        return torch.optim.Adam(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)

    def _optimizer(self, name: str):
        if not self._optimizer_names:
            self._optimizer_names = list(self.optimizer_specs())
        optimizers = self.optimizers()
        if not isinstance(optimizers, list):
            optimizers = [optimizers]
        try:
            return optimizers[self._optimizer_names.index(name)]
        except ValueError:
            raise KeyError(f"no optimizer named {name!r}; have {self._optimizer_names}") from None

    # ------------------------------------------------------------------ schedules (in batches)
    def _stage_key(self, value: Any) -> Any:
        stages = self.contract.stages
        if value in stages:
            return value
        with contextlib.suppress(TypeError, ValueError):
            if int(value) in stages:
                return int(value)
        known = ", ".join(self.contract.stage_label(k) for k in stages) or "none (single stage)"
        raise ValueError(f"unknown {self.contract.name} stage {value!r}; its stages: {known}")

    def _init_schedule(self, stage: Any, schedule: Any) -> None:
        """Validate ``stage``/``schedule`` (see the class docstring); nothing is resolved yet."""
        c = self.contract
        self.fixed_stage: Any = None
        self.schedule_spec: str | None = None  # "paper" | "explicit" | None
        self.schedule: list[dict] = []  # resolved phases {"stage", "batches", "lr"}
        self.trained_batches: dict[str, int] = {}  # per network: batches that trained it
        self.init_source: str | None = None
        self._entry_index: int | None = None
        explicit = isinstance(schedule, list | tuple)
        if stage is not None:
            if explicit:
                raise ValueError(
                    f"{c.name}: give either stage={stage!r} (train one stage) or a schedule "
                    "list, not both"
                )
            self.fixed_stage = self._stage_key(stage)
            return
        if explicit:
            self.schedule = [self._check_entry(dict(plain(e))) for e in schedule]
            self.schedule_spec = "explicit"
        elif schedule in ("paper", None):
            self.schedule_spec = "paper" if c.paper_schedule else None
        else:
            raise ValueError(f"schedule must be 'paper' or a list of phases, got {schedule!r}")

    def _check_entry(self, entry: dict) -> dict:
        staged = bool(self.contract.stages)
        allowed = {"stage", "batches", "lr"} if staged else {"batches", "lr"}
        unknown = set(entry) - allowed
        if unknown:
            raise ValueError(
                f"bad schedule entry {entry!r}: unknown keys {sorted(unknown)}; allowed: "
                f"{sorted(allowed)}"
            )
        try:
            batches = int(entry["batches"])
        except (KeyError, TypeError, ValueError):
            batches = -1
        if batches < 0 or (staged and entry.get("stage") is None):
            need = "stage and batches >= 0" if staged else "batches >= 0"
            raise ValueError(f"bad schedule entry {entry!r}: need {need}")
        if entry.get("lr") is not None and float(entry["lr"]) <= 0:
            raise ValueError(f"bad schedule entry {entry!r}: lr must be > 0")
        out = {"batches": batches}
        if staged:
            out["stage"] = self._stage_key(entry["stage"])
        if entry.get("lr") is not None:
            out["lr"] = float(entry["lr"])
        return out

    def resolve_schedule(self, total_batches: int | None) -> list[dict]:
        """Resolve ``schedule="paper"`` for a run of ``total_batches`` batches: the paper's
        phases in order, lengths by the contract's fractions (at least one batch each, see
        :meth:`_phase_lengths`); ``None``: the paper's own lengths. Explicit or already
        resolved (e.g. restored from a checkpoint) schedules are kept. Returns the schedule."""
        if self.schedule_spec != "paper" or self.schedule:
            return self.schedule
        phases = self.contract.paper_schedule
        if total_batches is None:
            missing = [p for p in phases if p.batches is None]
            if missing:
                raise ValueError(
                    f"{self.contract.name}'s paper does not state every phase length: give the "
                    "run length (train.max_batches) to scale its schedule"
                )
            lengths = [int(p.batches) for p in phases]
        else:
            lengths = self._phase_lengths(int(total_batches))
        self.schedule = []
        for phase, n in zip(phases, lengths):
            entry: dict[str, Any] = {"batches": n}
            if self.contract.stages:
                entry["stage"] = phase.stage
            if phase.lr is not None:
                entry["lr"] = float(phase.lr)
            self.schedule.append(entry)
        return self.schedule

    def _phase_lengths(self, total: int) -> list[int]:
        """``total`` batches split by the paper's fractions: every phase gets at least one
        batch, the rest by largest remainder (ties to the earlier phase)."""
        phases = self.contract.paper_schedule
        if total < len(phases):
            raise ValueError(
                f"{total} batches are too few for {self.contract.name}'s paper schedule of "
                f"{len(phases)} stages: give train.max_batches >= {len(phases)}, or train one "
                "stage (model.stage=...)"
            )
        shares = [p.fraction * total for p in phases]
        lengths = [max(1, int(share)) for share in shares]
        order = sorted(range(len(phases)), key=lambda i: (lengths[i] - shares[i], i))
        for i in order[: max(0, total - sum(lengths))]:
            lengths[i] += 1
        while sum(lengths) > total:  # the minimum of 1 took more than the shares allowed
            longer = [j for j in range(len(phases)) if lengths[j] > 1]
            i = max(longer, key=lambda j: (lengths[j] - shares[j], -j))
            lengths[i] -= 1
        return lengths

    def current_entry_index(self) -> int | None:
        """Index in ``self.schedule`` of the phase the next batch falls in (``None`` without a
        schedule; past the end: the last phase, which stays in force)."""
        if not self.schedule:
            return None
        done = self.batches_seen
        for index, entry in enumerate(self.schedule):
            if done < int(entry["batches"]):
                return index
            done -= int(entry["batches"])
        return len(self.schedule) - 1

    def current_schedule_entry(self) -> dict | None:
        """The phase of ``self.schedule`` the next batch falls in (``None`` without one)."""
        index = self.current_entry_index()
        return None if index is None else self.schedule[index]

    def current_stage(self) -> Any:
        """The stage key of the next batch (``None`` for single-stage methods)."""
        entry = self.current_schedule_entry()
        if entry is None or "stage" not in entry:
            return self.fixed_stage
        return entry["stage"]

    def stage_lr_factor(self) -> float:
        """Multiplier of the learning rates for the current phase: a phase's ``lr`` replaces
        the generator's ``lr`` (discriminators keep their ``d2g_lr`` ratio)."""
        entry = self.current_schedule_entry()
        if entry is None or entry.get("lr") is None:
            return 1.0
        return float(entry["lr"]) / self.lr

    def schedule_batches(self) -> int | None:
        """Total batches of the (resolved) schedule (``None`` without one)."""
        return sum(int(e["batches"]) for e in self.schedule) if self.schedule else None

    def trains_now(self) -> tuple[str, ...]:
        """The networks the current stage updates (all of them for single-stage methods)."""
        stage = self.current_stage()
        if stage is None or not self.contract.stages:
            return self.net_names
        return self.contract.stages[stage].trains

    def upcoming_stages(self) -> list[Any]:
        """The stages this run will still train, in order."""
        if self.fixed_stage is not None:
            return [self.fixed_stage]
        index = self.current_entry_index()
        if index is None or not self.contract.stages:
            return []
        return [
            e["stage"] for e in self.schedule[index:] if e["batches"] > 0 or e is self.schedule[-1]
        ]

    def check_stage_requirements(self) -> None:
        """Refuse to train a stage on networks no earlier stage (or ``init_from``) trained.

        Raises:
            StageRequirementError: naming the stage, the untrained network, the stage that
                trains it and the two ways to provide it.
        """
        c = self.contract
        trained = {n for n, b in self.trained_batches.items() if b > 0}
        for key in self.upcoming_stages():
            stage = c.stages[key]
            missing = [n for n in stage.needs if n not in trained]
            if missing:
                trainers = [
                    c.stage_label(k) for k, s in c.stages.items() if set(missing) & set(s.trains)
                ]
                raise StageRequirementError(
                    f"{c.name} stage {c.stage_label(key)} needs a trained {', '.join(missing)} "
                    f"(trained by stage {' or '.join(trainers) or '?'}), but this run has none: "
                    "start from a checkpoint that has it (init_from=<run>/checkpoints/last.ckpt) "
                    "or train the paper schedule (leave model.stage unset)"
                )
            trained |= set(stage.trains)

    def schedule_note(self) -> str:
        """The schedule of this run as a line for ``run_notes``."""
        c = self.contract
        if self.fixed_stage is not None:
            return f"stage {c.stage_label(self.fixed_stage)} only"
        if not self.schedule:
            if self.schedule_spec:
                return "schedule: the paper's (not yet resolved)"
            return f"schedule: one phase for the whole run at lr {self.lr:g}"
        parts = []
        for e in self.schedule:
            head = f"{c.stage_label(e['stage'])}: " if "stage" in e else ""
            lr = f" at lr {float(e['lr']):g}" if e.get("lr") is not None else ""
            parts.append(f"{head}{e['batches']}{lr}")
        note = "schedule in batches: " + ", ".join(parts)
        if self.schedule_spec == "paper" and len(c.paper_schedule) > 1:
            shares = "/".join(f"{100 * p.fraction:g}" for p in c.paper_schedule)
            note += f" (the paper's stage order, {shares} % of the run)"
        return note

    def run_notes(self) -> list[str]:
        """What makes this run differ from the paper recipe, and the schedule it ran (recorded
        in results files)."""
        notes = self.vgg_notes()
        if self.variant != "full":
            notes.append(f"{self.variant} variant (reduced widths), not the paper's network")
        notes.append(self.schedule_note())
        if self.init_source:
            notes.append(f"initialised from {self.init_source}")
        notes.extend(self.contract.notes)
        notes.extend(self.extra_run_notes())
        return notes

    def extra_run_notes(self) -> list[str]:
        """Method-specific notes (e.g. a loss term that is off and why)."""
        return []

    # ------------------------------------------------------------------ train / eval modes
    def frozen_batch_norms(self) -> list[nn.Module]:
        """The BatchNorms a stage with ``freeze_batch_norms`` keeps in eval mode: by default
        every BatchNorm of the inference networks (override to freeze fewer, e.g. PConv's
        encoder-only fine-tune)."""
        return [
            m
            for name in self.inference_nets
            for m in getattr(self, name).modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm)
        ]

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """Put each network in the mode the current stage declares: its ``eval_nets`` in eval
        mode, the others in train mode, and with ``freeze_batch_norms`` the
        :meth:`frozen_batch_norms` in eval mode (set every batch: evaluation in between
        switches modes)."""
        stage = self.contract.stages.get(self.current_stage()) if self.contract.stages else None
        if stage is None:
            return
        for name in self.net_names:
            getattr(self, name).train(name not in stage.eval_nets)
        if stage.freeze_batch_norms:
            for bn in self.frozen_batch_norms():
                bn.eval()

    # ------------------------------------------------------------------ VGG-based losses
    @property
    def pconv_loss(self) -> PConvLoss:
        """The PConv-family loss (:class:`~inpaintzoo.losses.PConvLoss`, VGG16 pool1-3) of a
        method whose contract weighs ``hole`` and ``valid``: those L1 terms, plus perceptual and
        style where their weights are non-zero and VGG losses are on (else the L1 terms alone).
        Name it as the contract's VGG attribute (``vgg_attribute = "pconv_loss"``)."""
        terms = ("hole", "valid") + tuple(t for t in ("perceptual", "style") if self.weights.get(t))
        built = self.lazy_vgg(lambda: PConvLoss(terms=terms, weights=self.backbone_weights()))
        if built is not None:
            return built
        if not self._l1_holder:
            self._l1_holder.append(PConvLoss(terms=("hole", "valid")))
        return self._l1_holder[0]

    @property
    def vgg_enabled(self) -> bool:
        """Whether the run uses VGG-based losses: backbone not ``off`` and a weight of one of
        the contract's ``vgg_terms`` non-zero."""
        if self.perceptual_backbone == "off":
            return False
        return any(self.weights.get(t, 0) for t in self.contract.vgg_terms)

    def lazy_vgg(self, build: Callable[[], nn.Module]) -> nn.Module | None:
        """The method's VGG loss module, built by ``build()`` on first use (fit start), on the
        module's device; ``None`` when VGG losses are off. Built lazily so that inference and
        parameter counting never need ImageNet weights, and held outside the module tree so the
        frozen backbone stays out of checkpoints."""
        if not self.vgg_enabled:
            return None
        if not self._vgg_holder:
            self._vgg_holder.append(build())
        vgg = self._vgg_holder[0]
        first = next(vgg.parameters(), None)
        if first is not None and first.device != self.device:
            vgg.to(self.device)
        return vgg

    def vgg_notes(self) -> list[str]:
        """Notes saying how this run's VGG losses differ from the paper recipe."""
        terms = self.contract.vgg_terms
        if not terms:
            return []
        if not self.vgg_enabled:
            off = ", ".join(f"{t} (weight {self.contract.losses[t]:g})" for t in terms)
            why = (
                "perceptual_backbone=off"
                if self.perceptual_backbone == "off"
                else "their weights are 0"
            )
            return [f"VGG-based losses switched off ({why}): {off} not used; not the full recipe"]
        if self.perceptual_backbone == "random":
            return ["VGG loss backbone randomly initialised (timing only)"]
        return []

    def backbone_weights(self) -> str:
        """The VGG weights to build: ``imagenet`` or ``random`` (never ``off`` when built)."""
        return "random" if self.perceptual_backbone == "random" else "imagenet"

    def on_fit_start(self) -> None:
        for note in self.vgg_notes():
            log.warning("%s: %s", type(self).__name__, note)
        if self.vgg_attribute:
            getattr(self, self.vgg_attribute)  # builds it now (MissingWeightsError if absent)
        if self.schedule_spec == "paper" and not self.schedule:
            from inpaintzoo.callbacks import BatchBudget

            budgets = [cb for cb in self.trainer.callbacks if isinstance(cb, BatchBudget)]
            if not budgets:
                raise ValueError(
                    f"{self.contract.name}: schedule='paper' scales the paper's stages to the "
                    "run length: call model.resolve_schedule(total_batches) before fit, or "
                    "train with a BatchBudget callback"
                )
            self.resolve_schedule(budgets[0].max_batches)

    def on_train_start(self) -> None:
        self.check_stage_requirements()

    # ------------------------------------------------------------------ adversarial training
    @contextlib.contextmanager
    def frozen(self, *modules: nn.Module) -> Iterator[None]:
        """Parameters of ``modules`` do not require grad inside the block (restored after): the
        one way a method freezes a discriminator while its generator's loss goes through it."""
        params = [p for m in modules for p in m.parameters() if p.requires_grad]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def discriminator_step(
        self,
        name: str,
        real: Any,
        fake: Any,
        *,
        scale: float = 1.0,
        extra: Callable[[Any, Any], torch.Tensor] | None = None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """One update of the discriminator ``name`` (its optimizer has the same name).

        ``real``/``fake`` are its input (a tensor, or a tuple of positional inputs); fakes are
        detached. The loss is ``scale * adversarial_loss.discriminator_loss(...)`` plus
        ``extra(real_out, fake_out)`` when given (e.g. CTSDG's edge terms); WGAN-GP gets the
        critic and inputs for its penalty (``mask``: DeepFill v1's masked penalty).
        Returns ``(loss, real_out)`` (real outputs for feature matching or ``ralsgan``).
        """
        disc = getattr(self, name)
        fake = _detach(fake)
        real_out = disc(*_as_args(real))
        fake_out = disc(*_as_args(fake))
        single = torch.is_tensor(real) and torch.is_tensor(fake)
        loss = scale * self.adversarial_loss.discriminator_loss(
            real_out,
            fake_out,
            critic=disc if single else None,
            real=real if single else None,
            fake=fake if single else None,
            mask=mask,
        )
        if extra is not None:
            loss = loss + extra(real_out, fake_out)
        self.optimize({name: loss}, name)
        return loss, real_out

    def generator_adversarial(
        self, name: str, fake: Any, real_out: Any | None = None
    ) -> tuple[torch.Tensor, Any]:
        """The generator's adversarial term through the (frozen) discriminator ``name``.

        Returns ``(loss, fake_out)``; ``real_out`` is needed by ``ralsgan``."""
        disc = getattr(self, name)
        with self.frozen(disc):
            fake_out = disc(*_as_args(fake))
        return self.adversarial_loss.generator_loss(fake_out, real_out), fake_out

    def _lr_factor(self) -> float:
        spec = self.scheduler_spec
        if not spec:
            return self.stage_lr_factor()
        kind = spec.get("kind", "step")
        if kind == "step":
            passed = sum(1 for m in spec.get("milestones", []) if self.batches_seen >= int(m))
            return self.stage_lr_factor() * float(spec.get("gamma", 0.1)) ** passed
        if kind == "constant":
            return self.stage_lr_factor()
        raise ValueError(f"unknown scheduler kind {kind!r}; choose 'step' or 'constant'")

    def optimize(
        self,
        losses: Mapping[str, torch.Tensor],
        optimizer_names: str | Iterable[str],
        terms: Mapping[str, torch.Tensor] | None = None,
    ) -> bool:
        """Backward the sum of ``losses`` and step the named optimizers.

        A non-finite total skips the step (gradients are dropped) and is counted; after
        ``max_nonfinite`` in a row for the same optimizer group (a healthy discriminator step in
        between does not reset the generator's streak) a :class:`NonFiniteLossError` names the
        batch and the term.
        Returns whether the step was taken.
        """
        names = [optimizer_names] if isinstance(optimizer_names, str) else list(optimizer_names)
        total = sum(losses.values())
        finite = bool(torch.isfinite(total.detach()))
        if self.trainer is not None and getattr(self.trainer, "world_size", 1) > 1:
            finite = self.trainer.strategy.reduce_boolean_decision(finite, all=True)
        optimizers = [self._optimizer(n) for n in names]
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        streak_key = ",".join(names)
        if not finite:
            self._nonfinite_streaks[streak_key] = self._nonfinite_streaks.get(streak_key, 0) + 1
            self.nonfinite_in_a_row = self._nonfinite_streaks[streak_key]
            self.nonfinite_total += 1
            values = {**(terms or {}), **losses}
            bad = [
                k for k, v in values.items() if torch.is_tensor(v) and not torch.isfinite(v).all()
            ]
            log.warning(
                "non-finite loss at batch %d (%s); step of %s skipped",
                self.batches_seen,
                ", ".join(bad) or "total",
                names,
            )
            if self.nonfinite_in_a_row >= self.max_nonfinite:
                raise NonFiniteLossError(
                    f"{self.nonfinite_in_a_row} non-finite losses in a row; last at batch "
                    f"{self.batches_seen} in term(s) {bad or ['total']} of optimizer(s) {names}. "
                    "Lower the learning rate, check the inputs, or enable grad_clip."
                )
            return False
        self._nonfinite_streaks[streak_key] = 0
        self.nonfinite_in_a_row = max(self._nonfinite_streaks.values())
        self.manual_backward(total)
        factor = self._lr_factor()
        scaled = self._grad_scaler() is not None
        for name, opt in zip(names, optimizers):
            if self.grad_clip and scaled:
                # 16-mixed: gradients are still scaled here; clip in on_before_optimizer_step,
                # which Lightning calls after unscaling them
                self._deferred_clip[id(_unwrap_optimizer(opt))] = float(self.grad_clip)
            elif self.grad_clip:
                self.clip_gradients(opt, gradient_clip_val=float(self.grad_clip))
            base_lr = self._base_lrs()[name]
            for group in opt.param_groups:
                group["lr"] = base_lr * factor
            opt.step()
        return True

    def _grad_scaler(self):
        """The AMP gradient scaler of ``precision=16-mixed`` runs (``None`` otherwise)."""
        trainer = self._trainer
        if trainer is None:
            return None
        return getattr(getattr(trainer, "precision_plugin", None), "scaler", None)

    def on_before_optimizer_step(self, optimizer) -> None:
        clip = self._deferred_clip.pop(id(_unwrap_optimizer(optimizer)), None)
        if clip:
            params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, clip)

    def _base_lrs(self) -> dict[str, float]:
        if not hasattr(self, "_base_lr_cache"):
            self._base_lr_cache = {n: float(lr) for n, (_, lr) in self.optimizer_specs().items()}
        return self._base_lr_cache

    # ------------------------------------------------------------------ Lightning hooks
    def _enter_phase(self) -> None:
        """At a phase boundary, give the stage fresh optimizers when it asks for them."""
        index = self.current_entry_index()
        if index == self._entry_index:
            return
        previous, self._entry_index = self._entry_index, index
        stage = self.current_stage()
        if previous is None or stage is None or not self.contract.stages:
            return
        if self.contract.stages[stage].fresh_optimizers:
            fresh = [n for n in self._optimizer_names if n in self.contract.stages[stage].trains]
            for name in fresh:
                _unwrap_optimizer(self._optimizer(name)).state.clear()
            log.info("stage %s starts with fresh optimizers %s", stage, fresh)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        batch = self.to_memory_format(self.prepare_batch(batch))
        self._enter_phase()
        trained = self.trains_now()
        logs = self.training_batch(batch)
        self.batches_seen += 1
        for name in trained:
            self.trained_batches[name] = self.trained_batches.get(name, 0) + 1
        bs = batch["image"].shape[0]
        logs = {f"train/{k}": v.detach().float() for k, v in logs.items()}
        logs["train/nonfinite_skipped"] = float(self.nonfinite_total)
        self.log_dict(logs, prog_bar=False, on_step=True, on_epoch=False, batch_size=bs)
        self.log("batch", float(self.batches_seen), prog_bar=True, on_step=True, batch_size=bs)
        if self.sample_every_batches and self.batches_seen % self.sample_every_batches == 0:
            self._log_samples(batch, "train")

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, self.val_metrics, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, self.test_metrics, "test")

    def _eval_step(self, batch, batch_idx, metrics: MetricCollection, stage: str) -> None:
        batch = self.prepare_batch(batch)
        out = self.inpaint(batch["image"], batch["mask"], **self.inference_extras(batch))
        metrics.update(out["composite"].clamp(0, 1), batch["image"])
        self.log_dict(
            metrics, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["image"])
        )
        extra = self.eval_logs(batch, out)
        if extra:
            self.log_dict(
                {f"{stage}/{k}": v for k, v in extra.items()},
                on_step=False,
                on_epoch=True,
                batch_size=len(batch["image"]),
            )
        if batch_idx == 0:
            self._log_samples(batch, stage, out)

    def inference_extras(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Extra inputs passed to :meth:`inpaint` at validation (e.g. ground-truth edges)."""
        return {}

    def eval_logs(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        """Extra method-specific validation metrics (e.g. edge precision/recall)."""
        return {}

    def sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        """Columns of the sample grid: masked input | (method extras) | output | ground truth."""
        image, mask = batch["image"], batch["mask"]
        masked = image * (1 - mask) + mask
        cols = {"masked input": masked}
        cols.update(self.extra_sample_columns(batch, out))
        cols["output"] = out["composite"]
        cols["ground truth"] = image
        return cols

    def extra_sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        return {}

    @torch.no_grad()
    def _log_samples(self, batch: dict[str, Any], stage: str, out: dict | None = None) -> None:
        if self.trainer is None or not self.trainer.is_global_zero:
            return
        if out is None:
            out = self.inpaint(batch["image"], batch["mask"], **self.inference_extras(batch))
        from inpaintzoo.methods.logging import log_sample_grid

        columns = {k: v.detach().float().cpu() for k, v in self.sample_columns(batch, out).items()}
        log_sample_grid(self.trainer, f"{stage}/samples", columns, self.batches_seen)

    # ------------------------------------------------------------------ checkpoint state
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["inpaintzoo"] = {
            "method": self.method_name,
            "variant": self.variant,
            "batches_seen": int(self.batches_seen),
            "nonfinite_total": int(self.nonfinite_total),
            "size_multiple": int(self.size_multiple),
            "min_size": int(self.min_size),
            "value_range": self.value_range,
            "schedule": plain(self.schedule),
            "schedule_entry": self._entry_index,
            "trained_batches": dict(self.trained_batches),
            "init_from": self.init_source,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("inpaintzoo", {})
        method = state.get("method")
        if method is not None and method != self.method_name:
            raise ValueError(
                f"checkpoint was written by method {method!r}, not {self.method_name!r}"
            )
        self.batches_seen = int(state.get("batches_seen", 0))
        self.nonfinite_total = int(state.get("nonfinite_total", 0))
        if state.get("schedule"):
            self.schedule = [self._check_entry(dict(e)) for e in state["schedule"]]
        self._entry_index = state.get("schedule_entry", self.current_entry_index())
        if "trained_batches" in state:
            self.trained_batches = {k: int(v) for k, v in state["trained_batches"].items()}
        elif self.batches_seen:  # older checkpoints: assume every network was trained
            self.trained_batches = {n: self.batches_seen for n in self.net_names}
        self.init_source = state.get("init_from") or self.init_source

    def initialise_from(self, source: InpaintingModule, label: str | None = None) -> None:
        """Take ``source``'s weights (same method; keys that match) and its record of which
        networks are trained (``init_from``); a new run then starts from them."""
        if source.method_name != self.method_name:
            raise ValueError(
                f"cannot initialise {self.method_name} from a {source.method_name} checkpoint"
            )
        missing, unexpected = self.load_state_dict(source.state_dict(), strict=False)
        loaded = {n for n in self.net_names if not any(k.startswith(f"{n}.") for k in missing)}
        self.trained_batches = {
            n: b for n, b in source.trained_batches.items() if n in loaded and b > 0
        }
        self.init_source = label
        log.info(
            "initialised from %s (missing %d, unexpected %d keys; trained networks: %s)",
            label,
            len(missing),
            len(unexpected),
            sorted(self.trained_batches) or "none",
        )


def _unwrap_optimizer(opt):
    """The torch optimizer under a ``LightningOptimizer``."""
    return getattr(opt, "optimizer", opt)
