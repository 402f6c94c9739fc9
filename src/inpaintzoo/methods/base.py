"""``InpaintingModule``: the one shared training loop of the zoo.

Every method is a thin subclass that builds its networks, names its optimizers, and implements
``training_batch`` (the losses and the stage logic of one batch) and ``inpaint_raw`` (inference).
The base class owns everything else, once:

* manual optimisation (``automatic_optimization = False``) with named optimizers, so a GAN's
  generator and discriminator steps, multi-stage schedules and joint stages are explicit;
* a batch counter (``batches_seen``) saved in checkpoints: configs speak in batches, while
  Lightning's ``global_step`` counts optimizer steps (2 per batch for a G/D pair);
* gradient clipping, per-batch LR schedules, a non-finite loss guard (a NaN/Inf loss skips the
  step; ``max_nonfinite`` in a row stop the run with a message naming the batch and loss term);
* validation/test metrics on the composite (PSNR, SSIM, L1 via torchmetrics) and sample grids
  logged to whichever Lightning loggers are attached (CSV -> PNG files, TensorBoard, wandb);
* checkpoint hyperparameters as plain Python types (``torch.load(weights_only=True)`` reads them),
  with the method name, variant, size multiple and value range;
* speed switches (:meth:`InpaintingModule.configure_speed`, ``train.channels_last`` and
  ``train.compile`` in the configs): channels-last memory format and an in-place
  ``torch.compile`` of the networks named by ``compile_nets``, applied once in ``setup``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from inpaintzoo.conventions import check_pair, composite

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """Raised after too many consecutive non-finite losses."""


def _plain(value: Any) -> Any:
    """Convert OmegaConf containers / tuples / Paths into plain Python types."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


class InpaintingModule(pl.LightningModule):
    """Base class of every learned inpainting method.

    Subclasses set the class attributes below, build their nets in ``__init__`` (after calling
    ``super().__init__(...)``) and implement :meth:`optimizer_specs`, :meth:`training_batch` and
    :meth:`inpaint_raw`.

    Args:
        variant: ``"full"`` (the paper's widths) or ``"tiny"`` (CPU tests and demos).
        lr: generator learning rate.
        betas: Adam betas.
        d2g_lr: discriminator LR as a fraction of ``lr``.
        weight_decay: Adam weight decay.
        grad_clip: clip each optimizer's gradient norm to this value (``None``: off).
        scheduler: ``None`` or ``{"kind": "step", "milestones": [batches...], "gamma": 0.1}``
            (per-batch multi-step decay applied to every optimizer).
        max_nonfinite: consecutive non-finite losses tolerated before stopping.
        sample_every_batches: log a sample grid every this many batches (0: only at validation).
    """

    method_name: ClassVar[str] = "base"
    size_multiple: ClassVar[int] = 1
    min_size: ClassVar[int] = 1
    value_range: ClassVar[str] = "[0,1]"
    #: the names of the networks that make up the inference model, for parameter counts
    inference_nets: ClassVar[tuple[str, ...]] = ()
    #: the networks ``train.compile`` compiles (``None``: the ``inference_nets``, i.e. the
    #: generators; discriminators stay eager)
    compile_nets: ClassVar[tuple[str, ...] | None] = None

    def __init__(
        self,
        variant: str = "full",
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        d2g_lr: float = 0.1,
        weight_decay: float = 0.0,
        grad_clip: float | None = None,
        scheduler: dict | None = None,
        max_nonfinite: int = 10,
        sample_every_batches: int = 0,
        **method_hparams: Any,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if variant not in ("full", "tiny"):
            raise ValueError(f"unknown variant {variant!r}; choose 'full' or 'tiny'")
        self.variant = variant
        self.lr = float(lr)
        self.betas = tuple(float(b) for b in betas)
        self.d2g_lr = float(d2g_lr)
        self.weight_decay = float(weight_decay)
        self.grad_clip = grad_clip
        self.scheduler_spec = _plain(scheduler)
        self.max_nonfinite = int(max_nonfinite)
        self.sample_every_batches = int(sample_every_batches)
        self.batches_seen = 0
        self.nonfinite_in_a_row = 0  # longest current streak over the optimizer groups
        self.nonfinite_total = 0
        self._nonfinite_streaks: dict[str, int] = {}
        self._optimizer_names: list[str] = []
        self.schedule: list[dict] = []  # set by multi-stage methods
        self._vgg_holder: list[nn.Module] = []  # see lazy_vgg
        # speed switches (not hyperparameters: a checkpoint does not depend on them)
        self.use_channels_last = False
        self.compile_options: dict[str, Any] | None = None
        self._speed_applied = False
        self._deferred_clip: dict[int, float] = {}
        self.val_metrics = self._make_metrics("val/")
        self.test_metrics = self._make_metrics("test/")

    # ------------------------------------------------------------------ hparams / metadata
    def save_method_hparams(self, **hparams: Any) -> None:
        """Store every constructor argument as plain types, plus metadata for inference."""
        plain = _plain(hparams)
        plain.update(
            method=self.method_name,
            size_multiple=self.size_multiple,
            min_size=self.min_size,
            value_range=self.value_range,
        )
        self.save_hyperparameters(plain)

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
            self.compile_options = dict(_plain(compile))
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
        """``{name: (parameters, lr)}`` in a fixed order; Adam with ``betas`` for each."""
        raise NotImplementedError

    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Run one batch: compute losses and call :meth:`optimize`. Returns values to log."""
        raise NotImplementedError

    def inpaint_raw(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        """Inference on a batch whose size suits the network. Returns at least ``output``
        (B,3,H,W) in [0,1] (raw, not composited); may add e.g. ``edge``."""
        raise NotImplementedError

    def prepare_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Add structure maps etc. on the accelerator (not in data workers). Default: none."""
        return batch

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
        out = self.inpaint_raw(image * (1.0 - mask), mask, **extras)
        out["composite"] = composite(out["output"].clamp(0, 1), image, mask)
        return out

    def forward(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> torch.Tensor:
        return self.inpaint(image, mask, **extras)["composite"]

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self):
        specs = self.optimizer_specs()
        self._optimizer_names = list(specs)
        optimizers = []
        for params, lr in specs.values():
            params = [p for p in params if p.requires_grad]
            optimizers.append(
                torch.optim.Adam(params, lr=lr, betas=self.betas, weight_decay=self.weight_decay)
            )
        return optimizers

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
    def current_schedule_entry(self) -> dict | None:
        """The entry of ``self.schedule`` that the next batch falls in.

        A schedule is a list of ``{"batches": n, "stage": ..., "lr": x}`` entries (``stage`` and
        ``lr`` optional), run in order; past its end the last entry stays in force. ``None``
        when the method has no schedule.
        """
        schedule = getattr(self, "schedule", None)
        if not schedule:
            return None
        done = self.batches_seen
        for entry in schedule:
            if done < int(entry["batches"]):
                return entry
            done -= int(entry["batches"])
        return schedule[-1]

    def stage_lr_factor(self) -> float:
        """Multiplier of the learning rates for the current schedule entry: an entry's ``lr``
        replaces the generator's ``lr`` (discriminators keep their ``d2g_lr`` ratio)."""
        entry = self.current_schedule_entry()
        if entry is None or entry.get("lr") is None:
            return 1.0
        return float(entry["lr"]) / self.lr

    def schedule_batches(self) -> int | None:
        """Total batches of the schedule (``None`` without one)."""
        schedule = getattr(self, "schedule", None)
        return sum(int(e["batches"]) for e in schedule) if schedule else None

    def schedule_note(self) -> str | None:
        """The schedule as a line for ``run_notes`` (``None`` without one)."""
        schedule = getattr(self, "schedule", None)
        if not schedule:
            return None
        parts = []
        for e in schedule:
            head = f"{e['stage']}: " if e.get("stage") is not None else ""
            lr = f" at lr {float(e['lr']):g}" if e.get("lr") is not None else ""
            parts.append(f"{head}{e['batches']}{lr}")
        return "schedule in batches: " + ", ".join(parts)

    # ------------------------------------------------------------------ VGG-based losses
    #: the loss terms that need the VGG backbone, for logs and results notes
    vgg_terms: ClassVar[str] = "perceptual, style"
    #: the property that builds the VGG loss module through :meth:`lazy_vgg` (built at fit
    #: start, so missing ImageNet weights fail before the first batch)
    vgg_attribute: ClassVar[str | None] = None

    @property
    def vgg_enabled(self) -> bool:
        """Whether the run uses VGG-based losses (``perceptual_weight`` or ``style_weight``)."""
        weights = getattr(self, "weights", {})
        return bool(weights.get("perceptual", 0) or weights.get("style", 0))

    def lazy_vgg(self, build) -> nn.Module | None:
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
        if not self.vgg_enabled:
            return [f"VGG-based losses ({self.vgg_terms}) switched off: not the full recipe"]
        if getattr(self, "perceptual_backbone", "imagenet") == "random":
            return ["VGG loss backbone randomly initialised (timing only)"]
        return []

    def on_fit_start(self) -> None:
        for note in self.vgg_notes():
            log.warning("%s: %s", type(self).__name__, note)
        if self.vgg_attribute:
            getattr(self, self.vgg_attribute)  # builds it now (MissingWeightsError if absent)

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
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        batch = self.to_memory_format(self.prepare_batch(batch))
        logs = self.training_batch(batch)
        self.batches_seen += 1
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


def _unwrap_optimizer(opt):
    """The torch optimizer under a ``LightningOptimizer``."""
    return getattr(opt, "optimizer", opt)


def not_none(**kwargs: Any) -> dict[str, Any]:
    """The keyword arguments that are not ``None`` (e.g. width overrides of a variant)."""
    return {k: v for k, v in kwargs.items() if v is not None}


def finite_or_nan(value: float) -> float:
    return value if math.isfinite(value) else float("nan")
