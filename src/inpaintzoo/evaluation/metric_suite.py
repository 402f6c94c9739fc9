"""Which metrics an evaluation computes, per sample and per hole-ratio bin.

:class:`MetricSuite` decides once per evaluation which metrics can be computed (PSNR, SSIM and
L1 always; ``ssim_lbam`` when asked; LPIPS alex/vgg and FID when their backbone weights are in
the torch hub cache, otherwise "n/a" with the reason), scores every batch, and summarises the
per-sample values overall and per bin through :class:`~inpaintzoo.metrics.BinnedMetrics`.

:class:`SampleTable` gathers the per-sample chunks (see :mod:`inpaintzoo.evaluation.cache`) into
one table ordered by sample index, so the summary never depends on how a run was interrupted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from inpaintzoo.evaluation.settings import MetricSettings

__all__ = ["MetricSuite", "SampleTable"]

#: chunk keys that are not metric values (see :class:`~inpaintzoo.evaluation.cache.SampleCache`)
_BOOKKEEPING = ("index", "seconds", "hole_ratio")
_FID_PREFIX = "fid_"


def _lpips_metrics(mode: str, device: torch.device) -> tuple[dict[str, Any], dict[str, str]]:
    """``({key: LPIPSMetric}, {key: na_reason})`` for alex and vgg."""
    from inpaintzoo.metrics import LPIPS_NETS, LPIPSMetric, lpips_availability

    metrics: dict[str, Any] = {}
    na: dict[str, str] = {}
    for net in LPIPS_NETS:
        key = f"lpips_{net}"
        if mode == "off":
            na[key] = "LPIPS switched off (evaluate lpips=off)"
            continue
        if mode == "imagenet":
            ok, reason = lpips_availability(net)
            if not ok:
                na[key] = reason
                continue
        metrics[key] = LPIPSMetric(net, weights=mode).to(device)
    return metrics, na


@dataclass
class SampleTable:
    """Every per-sample result of one evaluation, ordered by sample index.

    ``index`` ``(N,)`` long; ``values`` metric -> ``(N,)`` float64; ``hole_ratios`` ``(N,)``;
    ``fid_real`` / ``fid_fake`` ``(N, D)`` Inception features (``None`` when FID is off);
    ``seconds`` the summed timed seconds of the chunks.
    """

    index: torch.Tensor
    values: dict[str, torch.Tensor]
    hole_ratios: torch.Tensor
    fid_real: torch.Tensor | None
    fid_fake: torch.Tensor | None
    seconds: float

    @classmethod
    def from_chunks(cls, chunks: list[dict[str, Any]]) -> SampleTable:
        if not chunks:
            empty = torch.zeros(0)
            return cls(torch.zeros(0, dtype=torch.long), {}, empty, None, None, 0.0)
        index = torch.cat([c["index"] for c in chunks])
        order = torch.argsort(index)

        def column(name: str) -> torch.Tensor:
            return torch.cat([c[name] for c in chunks])[order]

        names = [k for k in chunks[0] if k not in _BOOKKEEPING and not k.startswith(_FID_PREFIX)]
        fid = "fid_real" in chunks[0]
        return cls(
            index=index[order],
            values={name: column(name) for name in names},
            hole_ratios=column("hole_ratio"),
            fid_real=column("fid_real") if fid else None,
            fid_fake=column("fid_fake") if fid else None,
            seconds=float(sum(float(c["seconds"]) for c in chunks)),
        )

    def __len__(self) -> int:
        return len(self.index)


class MetricSuite:
    """The metrics of one evaluation on ``device`` (see the module docstring).

    Attributes:
        na_reasons: metric key -> why it is not computed (reported as n/a in every bin).
        notes: remarks for the results' ``notes`` (e.g. a random LPIPS backbone).
    """

    def __init__(self, settings: MetricSettings, device: torch.device) -> None:
        from inpaintzoo.metrics import FIDFeatures, fid_availability

        self.settings = settings
        self.lpips, self.na_reasons = _lpips_metrics(settings.lpips, device)
        self.notes: list[str] = []
        if settings.lpips == "random" and self.lpips:
            self.notes.append(
                "LPIPS with a RANDOM backbone (lpips=random): test/timing only, meaningless"
            )
        self.fid = None
        if not settings.fid:
            self.na_reasons["fid"] = "FID switched off (evaluate fid=false)"
        else:
            ok, reason = fid_availability()
            if ok:
                self.fid = FIDFeatures().to(device)
            else:
                self.na_reasons["fid"] = reason

    def cache_settings(self, max_side: int | None) -> dict[str, Any]:
        """The results' ``settings`` block, hashed into the cache key: what changes the values."""
        return {
            "lpips": self.settings.lpips,
            "fid": self.fid is not None,
            "ssim_variants": self.settings.ssim_variants,
            "max_side": max_side,
        }

    def __call__(self, composite: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample entries of a batch: metric -> ``(B,)`` float64 on the CPU, plus
        ``fid_real`` / ``fid_fake`` features when FID is on. Inputs ``(B, 3, H, W)`` in ``[0, 1]``
        on the evaluation device."""
        from inpaintzoo.metrics import per_image_metrics, ssim

        values = per_image_metrics(composite, target)
        if self.settings.ssim_variants:
            values["ssim_lbam"] = ssim(composite, target, variant="lbam")
        for name, metric in self.lpips.items():
            values[name] = metric(composite, target)
        entries = {name: value.detach().double().cpu() for name, value in values.items()}
        if self.fid is not None:
            entries["fid_real"] = self.fid(target)
            entries["fid_fake"] = self.fid(composite)
        return entries

    def summarize(self, table: SampleTable, bins: Any) -> dict[str, dict]:
        """The results' ``metrics`` block: every metric overall and per bin (mean, 95 % CI, n),
        n/a entries with their reasons, and FID per group when it is on."""
        from inpaintzoo.metrics import BinnedMetrics

        # a metric now n/a (e.g. its backbone file removed) but present in older cached chunks
        # is reported as n/a
        values = {k: v for k, v in table.values.items() if k not in self.na_reasons}
        # sync_on_compute=False: the table already holds every sample of this process's
        # evaluation, and after DDP training only rank 0 evaluates - a cross-rank sync would hang
        binned = BinnedMetrics(
            bins, metrics=list(values), na_reasons=self.na_reasons, sync_on_compute=False
        )
        binned.update(values, table.hole_ratios)
        metrics = binned.summary()
        if self.fid is not None and len(table):
            _add_fid(metrics, table, bins)
        return metrics


def _add_fid(metrics: dict[str, dict], table: SampleTable, bins: Any) -> None:
    """FID of the real vs composite features overall and per bin, into ``metrics``."""
    from inpaintzoo.metrics import fid_from_features

    bin_index = torch.tensor([bins.index(float(r)) for r in table.hole_ratios])
    groups = [("overall", None)] + [(label, i) for i, label in enumerate(bins.labels)]
    for group, i in groups:
        select = slice(None) if i is None else bin_index == i
        real, fake = table.fid_real[select], table.fid_fake[select]
        value = fid_from_features(real, fake)
        entry = {"mean": value, "ci95": None, "n": int(len(real))}
        if value is None:
            entry["na_reason"] = "FID needs at least 2 samples"
        target = metrics["overall"] if i is None else metrics["bins"][group]
        target["fid"] = entry
