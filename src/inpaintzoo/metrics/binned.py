"""Per-image metrics accumulated over an evaluation, summarised overall and per hole-ratio bin.

:class:`BinnedMetrics` is a :class:`torchmetrics.Metric`: every per-image value and hole ratio is
a ``dist_reduce_fx="cat"`` state, so under DDP ``summary()`` sees the images of all ranks.
(torchmetrics keeps "cat" states as lists of tensors until they are synced/concatenated; both
forms are handled.) The evaluation runner aggregates with it in one process, built with
``sync_on_compute=False`` (after DDP training only rank 0 evaluates; a sync would wait for the
other ranks forever). The summary has the shape of ``metrics`` in the results schema
(docs/CONTRACTS.md)::

    {"overall": {"psnr": {"mean": 25.1, "ci95": 0.4, "n": 24}, ...},
     "bins": {"0-20%": {"psnr": {...}, ...}, ...}}

``ci95`` is the half width from :func:`~inpaintzoo.metrics.functional.mean_ci95` (Student t).
Undefined numbers are ``None`` (JSON ``null``): the mean of an empty bin, the half width for
``n = 1``. Metrics declared not available (``na_reasons``, e.g. LPIPS without its backbone
weights) appear as ``{"mean": None, "ci95": None, "n": 0, "na_reason": "..."}``. Images whose
ratio falls outside every bin (``bins.index(r) == -1``) count in ``overall`` only.

The bins object is duck-typed: ``.index(ratio) -> int`` (``-1`` outside) and ``.labels``
(e.g. :class:`inpaintzoo.masks.HoleRatioBins`, imported lazily as the default, 0-20/20-40/40-60 %).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torchmetrics import Metric

from inpaintzoo.metrics.functional import mean_ci95

__all__ = ["BinnedMetrics", "summarize"]

_RATIO_STATE = "hole_ratio"


def _as_number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _stat(values: torch.Tensor) -> dict[str, Any]:
    mean, half_width, n = mean_ci95(values)
    return {"mean": _as_number(mean), "ci95": _as_number(half_width), "n": n}


def summarize(
    values: Mapping[str, torch.Tensor],
    hole_ratios: torch.Tensor,
    bins: Any,
    na_reasons: Mapping[str, str] | None = None,
) -> dict[str, dict]:
    """The summary dict for per-image ``values`` (``{metric: (N,)}``) and ratios ``(N,)``."""
    na_reasons = dict(na_reasons or {})
    ratios = torch.as_tensor(hole_ratios, dtype=torch.float64).reshape(-1).cpu()
    index = torch.tensor([int(bins.index(float(r))) for r in ratios], dtype=torch.long)
    labels = list(bins.labels)

    def block(select: torch.Tensor | None) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for name, tensor in values.items():
            data = torch.as_tensor(tensor, dtype=torch.float64).reshape(-1).cpu()
            out[name] = _stat(data if select is None else data[select])
        for name, reason in na_reasons.items():
            out[name] = {"mean": None, "ci95": None, "n": 0, "na_reason": str(reason)}
        return out

    return {
        "overall": block(None),
        "bins": {label: block(index == i) for i, label in enumerate(labels)},
    }


class BinnedMetrics(Metric):
    """Accumulate per-image metrics with each image's hole ratio; summarise overall and per bin.

    Args:
        bins: duck-typed bins (``.index(r)``, ``.labels``); default
            ``inpaintzoo.masks.HoleRatioBins()`` (0-20/20-40/40-60 %).
        metrics: metric names to expect; ``None`` takes the keys of the first ``update``
            (under DDP pass them explicitly, so that every rank declares the same states even
            if one sees no batch).
        na_reasons: ``{metric: reason}`` for metrics that could not be computed (reported as
            n/a in every block, never updated).
        **kwargs: :class:`torchmetrics.Metric` options, e.g. ``sync_on_compute=False``.

    ``update(values, hole_ratio)``: ``values`` maps each metric name to a ``(B,)`` tensor (e.g.
    :func:`~inpaintzoo.metrics.per_image_metrics`), ``hole_ratio`` is ``(B,)`` (or a
    ``(B, 1, H, W)`` mask, whose per-image hole fraction is taken). ``summary()`` (= ``compute()``)
    returns the schema dict.
    """

    full_state_update = False
    higher_is_better = None
    is_differentiable = False

    def __init__(
        self,
        bins: Any = None,
        metrics: Sequence[str] | None = None,
        na_reasons: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if bins is None:
            from inpaintzoo.masks import HoleRatioBins

            bins = HoleRatioBins()
        if not (hasattr(bins, "index") and hasattr(bins, "labels")):
            raise TypeError("bins must provide .index(ratio) -> int and .labels")
        self.bins = bins
        self.na_reasons = dict(na_reasons or {})
        self.metric_names: list[str] = []
        self.add_state(_RATIO_STATE, default=[], dist_reduce_fx="cat")
        if metrics is not None:
            self._declare(metrics)

    @staticmethod
    def _state_name(metric: str) -> str:
        return f"values_{metric}"

    def _declare(self, metrics: Sequence[str]) -> None:
        for name in metrics:
            if name in self.na_reasons:
                raise ValueError(f"metric {name!r} is both expected and marked n/a")
            if name not in self.metric_names:
                self.metric_names.append(name)
                self.add_state(self._state_name(name), default=[], dist_reduce_fx="cat")

    def update(self, values: Mapping[str, torch.Tensor], hole_ratio: torch.Tensor) -> None:
        ratio = torch.as_tensor(hole_ratio).detach()
        if ratio.ndim == 4:  # a (B, 1, H, W) mask
            ratio = (ratio > 0.5).float().flatten(1).mean(dim=1)
        ratio = ratio.reshape(-1).to(device=self.device, dtype=torch.float64)
        if not self.metric_names:
            self._declare([k for k in values if k not in self.na_reasons])
        missing = [name for name in self.metric_names if name not in values]
        extra = [k for k in values if k not in self.metric_names and k not in self.na_reasons]
        if missing or extra:
            raise KeyError(
                f"BinnedMetrics expects {self.metric_names}; missing {missing}, unexpected {extra}"
            )
        for name in self.metric_names:
            value = torch.as_tensor(values[name]).detach().reshape(-1)
            if value.numel() != ratio.numel():
                raise ValueError(
                    f"metric {name!r} has {value.numel()} values for {ratio.numel()} hole ratios"
                )
            getattr(self, self._state_name(name)).append(
                value.to(device=self.device, dtype=torch.float64)
            )
        getattr(self, _RATIO_STATE).append(ratio)

    @staticmethod
    def _cat(state: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        if isinstance(state, torch.Tensor):
            return state.reshape(-1)
        if not state:
            return torch.zeros(0, dtype=torch.float64)
        return torch.cat([s.reshape(-1) for s in state])

    def compute(self) -> dict[str, dict]:
        ratios = self._cat(getattr(self, _RATIO_STATE))
        values = {
            name: self._cat(getattr(self, self._state_name(name))) for name in self.metric_names
        }
        return summarize(values, ratios, self.bins, self.na_reasons)

    def summary(self) -> dict[str, dict]:
        """The results-schema ``metrics`` block (synchronised across processes under DDP)."""
        return self.compute()

    @property
    def num_images(self) -> int:
        return int(self._cat(getattr(self, _RATIO_STATE)).numel())
