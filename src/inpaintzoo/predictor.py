"""The one inference path: any H x W in, composite out.

Used by the evaluation runner, ``inpaintzoo-predict`` and any app. For a learned method it

1. checks the image/mask pair (conventions: image (B,3,H,W) in [0,1], mask (B,1,H,W) 1 = hole);
2. **large images** (``max_side``): when the longer side exceeds ``max_side`` the image and mask
   are resized down (area / nearest), inpainted, and the output is resized back up (bicubic) and
   pasted into the hole of the full-resolution image: known pixels stay untouched at full
   resolution (the resize-and-paste-back strategy of inference apps);
3. **small images**: below the method's ``min_size`` the input is resized up and the output back
   down (bilinear image / nearest mask);
4. **odd sizes**: pads H and W up to the method's ``size_multiple`` (reflect padding; replicate
   where a side is too short to reflect), marks the padding as known, runs, crops back;
5. returns ``composite = output * mask + image * (1 - mask)``.

Classical baselines (callables that return the composite) go through the same checks.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from inpaintzoo.conventions import check_pair, composite

__all__ = ["Predictor", "pad_to_multiple"]


def pad_to_multiple(x: torch.Tensor, multiple: int, value_mode: str = "reflect") -> torch.Tensor:
    """Pad the bottom/right of ``x`` (B,C,H,W) so H and W are multiples of ``multiple``.

    ``reflect`` falls back to ``replicate`` where a side is too short to reflect.
    """
    h, w = x.shape[-2:]
    ph = (-h) % multiple
    pw = (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    mode = value_mode
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    if mode == "constant":
        return F.pad(x, (0, pw, 0, ph), mode="constant", value=0.0)
    return F.pad(x, (0, pw, 0, ph), mode=mode)


class Predictor:
    """Wrap a method for inference on any image size.

    Args:
        model: an :class:`~inpaintzoo.methods.base.InpaintingModule` or a classical inpainter.
        device: where to run (default: the model's device, or CUDA when available).
        max_side: resize-and-paste-back above this longer side (``None``: never).
    """

    def __init__(
        self, model, device: str | torch.device | None = None, max_side: int | None = None
    ):
        self.model = model
        self.learned = isinstance(model, torch.nn.Module) and hasattr(model, "inpaint_raw")
        if device is None:
            device = "cuda" if torch.cuda.is_available() and self.learned else "cpu"
        self.device = torch.device(device)
        if self.learned:
            self.model.to(self.device).eval()
        self.size_multiple = int(getattr(model, "size_multiple", 1))
        self.min_size = int(getattr(model, "min_size", 1))
        self.max_side = max_side

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        expected: str | None = None,
        device: str | torch.device | None = None,
        max_side: int | None = None,
    ) -> Predictor:
        from inpaintzoo.zoo import load_checkpoint

        return cls(load_checkpoint(path, expected=expected), device=device, max_side=max_side)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        expected: str | None = None,
        device: str | torch.device | None = None,
        max_side: int | None = None,
    ) -> Predictor:
        """Any trained artefact: a Lightning ``.ckpt``, a ``.safetensors`` weights export, or an
        ONNX export (its folder, its manifest or one of its ``.onnx`` files; the networks run in
        onnxruntime, the method's glue in PyTorch)."""
        from inpaintzoo.export import MANIFEST, load_onnx, load_safetensors

        path = Path(path)
        if path.is_dir() or path.suffix == ".onnx" or path.name == MANIFEST:
            model = load_onnx(path, expected=expected)
        elif path.suffix == ".safetensors":
            model = load_safetensors(path, expected=expected)
        else:
            return cls.from_checkpoint(path, expected=expected, device=device, max_side=max_side)
        return cls(model, device=device, max_side=max_side)

    @property
    def name(self) -> str:
        return getattr(self.model, "method_name", None) or getattr(self.model, "name", "model")

    # ------------------------------------------------------------------ core
    @torch.no_grad()
    def __call__(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        """Inpaint; returns ``{"composite": ..., "output": ..., **method extras}`` on the input's
        device, at the input's size. Extra (B,1,H,W) maps (e.g. ``edge_sketch``) follow the
        mask's resizing and padding."""
        check_pair(image, mask)
        in_device = image.device
        image = image.to(self.device, torch.float32)
        mask = mask.to(self.device, torch.float32)
        extras = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in extras.items()}
        h, w = image.shape[-2:]
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            small = self._run_resized(image, mask, extras, size, down=True)
            out = F.interpolate(small["output"], size=(h, w), mode="bicubic", align_corners=False)
            result = {"output": out.clamp(0, 1)}
        else:
            result = self._run_any_size(image, mask, extras)
        result["composite"] = composite(result["output"], image, mask)
        return {k: v.to(in_device) if torch.is_tensor(v) else v for k, v in result.items()}

    def _run_resized(self, image, mask, extras, size, down: bool) -> dict:
        mode = "area" if down else "bilinear"
        kw = {} if mode == "area" else {"align_corners": False}
        img = F.interpolate(image, size=size, mode=mode, **kw).clamp(0, 1)
        # nearest would drop thin holes when shrinking: a hole pixel stays a hole (max pool-like)
        msk = (F.interpolate(mask, size=size, mode="area" if down else "nearest") > 0).float()
        ext = {
            k: (F.interpolate(v.float(), size=size, mode="nearest") if _is_map(v, mask) else v)
            for k, v in extras.items()
        }
        return self._run_any_size(img, msk, ext)

    def _run_any_size(self, image, mask, extras) -> dict:
        h, w = image.shape[-2:]
        if min(h, w) < self.min_size:
            scale = self.min_size / min(h, w)
            size = (math.ceil(h * scale), math.ceil(w * scale))
            up = self._run_resized(image, mask, extras, size, down=False)
            out = F.interpolate(up["output"], size=(h, w), mode="bilinear", align_corners=False)
            return {"output": out.clamp(0, 1)}
        if not self.learned:
            return {"output": self.model(image, mask)}
        m = self.size_multiple
        img = pad_to_multiple(image, m)
        msk = pad_to_multiple(mask, m, value_mode="constant")  # padding is known context
        ext = {
            k: (pad_to_multiple(v.float(), m, "constant") if _is_map(v, mask) else v)
            for k, v in extras.items()
        }
        out = self.model.inpaint(img, msk, **ext)
        return {
            k: v[..., :h, :w] if torch.is_tensor(v) and v.ndim == 4 else v
            for k, v in out.items()
            if k != "composite"
        }


def _is_map(value: Any, mask: torch.Tensor) -> bool:
    return torch.is_tensor(value) and value.ndim == 4 and value.shape[-2:] == mask.shape[-2:]
