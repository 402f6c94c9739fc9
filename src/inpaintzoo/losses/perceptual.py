"""VGG feature extractor (VGG16/VGG19), perceptual and style losses, and the weight checks.

Facts from EdgeConnect (knazeri/edge-connect ``src/loss.py``, ``config.yml.example``):

* Perceptual: ``sum_l w_l * L1(F_l(pred), F_l(target))`` over VGG19 ``relu1_1, relu2_1,
  relu3_1, relu4_1, relu5_1``, all ``w_l = 1``; config weight 0.1.
* Style: ``sum_l L1(G(F_l(pred * m)), G(F_l(target * m)))`` over ``relu2_2, relu3_4, relu4_4,
  relu5_2``, ``G(F) = F F^T / (C H W)``; config weight 250.
* VGG19 with torchvision's ImageNet weights, frozen, fed **[0, 1] images without ImageNet
  mean/std normalisation** - hence ``normalize_input=False`` by default here.

ImageNet weights: the file torchvision would download (``VGG19_Weights.IMAGENET1K_V1``,
``vgg19-dcbb9e9d.pth``) is looked up in ``torch.hub.get_dir()/checkpoints`` **before** anything
is built; when it is absent :class:`MissingWeightsError` says where to put it and how to run
without it. Nothing is ever downloaded here (no network timeouts on offline machines).
``weights="random"`` builds the same architecture randomly initialised (torchvision's VGG init)
and logs a warning: for timing and tests only, never for results.

The frozen VGG weights are kept out of ``state_dict()`` by default (``save_weights=False``):
checkpoints of a method that uses these losses do not carry ~80 MB of fixed ImageNet weights,
and loading such a checkpoint does not report them missing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "VGG_CONFIGS",
    "VGG_LAYER_INDICES",
    "VGGFeatures",
    "vgg_weights_url",
    "DEFAULT_PERCEPTUAL_LAYERS",
    "DEFAULT_STYLE_LAYERS",
    "VGG19_LAYER_INDICES",
    "MissingWeightsError",
    "PerceptualLoss",
    "StyleLoss",
    "VGG19Features",
    "VGGLoss",
    "exclude_from_state_dict",
    "gram_matrix",
    "hub_checkpoint_path",
    "vgg19_weights_path",
]

logger = logging.getLogger(__name__)

WEIGHT_CHOICES = ("imagenet", "random")

#: torchvision VGG configurations ("D" = VGG16, "E" = VGG19): channels per conv, "M" = max-pool.
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}  # fmt: skip


def _layer_indices(cfg: Sequence[int | str]) -> dict[str, int]:
    """Map ``reluB_K`` and ``poolB`` to their indices in torchvision's ``vgg*().features``."""
    indices: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for item in cfg:
        if item == "M":
            indices[f"pool{block}"] = index
            index += 1
            block, conv = block + 1, 0
        else:
            conv += 1
            indices[f"relu{block}_{conv}"] = index + 1  # conv at index, its ReLU right after
            index += 2
    return indices


#: ``{arch: {layer name: index in features}}``, e.g. VGG19 ``relu1_1 -> 1``, ``relu5_4 -> 35``,
#: VGG16 ``pool3 -> 16``.
VGG_LAYER_INDICES: dict[str, dict[str, int]] = {
    a: _layer_indices(c) for a, c in VGG_CONFIGS.items()
}
#: VGG19's ReLU layers (the names EdgeConnect/StructureFlow use) and their feature indices.
VGG19_LAYER_INDICES: dict[str, int] = {
    k: v for k, v in VGG_LAYER_INDICES["vgg19"].items() if k.startswith("relu")
}

#: EdgeConnect's perceptual layers and weights.
DEFAULT_PERCEPTUAL_LAYERS: dict[str, float] = {
    "relu1_1": 1.0,
    "relu2_1": 1.0,
    "relu3_1": 1.0,
    "relu4_1": 1.0,
    "relu5_1": 1.0,
}
#: EdgeConnect's style layers.
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu2_2", "relu3_4", "relu4_4", "relu5_2")

_NO_VGG_HINT = (
    "switch the VGG-based losses off (perceptual_backbone=off, or their weights to 0), or, for "
    "timing only, build the same network randomly initialised (perceptual_backbone=random)"
)


class MissingWeightsError(RuntimeError):
    """A pretrained backbone's weight file is not in the torch hub cache (nothing is downloaded)."""


def hub_checkpoint_path(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url(url)`` keeps its file:
    ``torch.hub.get_dir()/checkpoints/<basename of the URL>``."""
    filename = os.path.basename(urlparse(url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def vgg_weights_url(arch: str) -> str:
    """torchvision's ImageNet weight URL of ``vgg16`` or ``vgg19`` (``IMAGENET1K_V1``)."""
    from torchvision.models import VGG16_Weights, VGG19_Weights

    return {"vgg16": VGG16_Weights, "vgg19": VGG19_Weights}[arch].IMAGENET1K_V1.url


def vgg19_weights_path() -> Path:
    """Expected path of torchvision's ImageNet VGG19 file (``vgg19-dcbb9e9d.pth``)."""
    return hub_checkpoint_path(vgg_weights_url("vgg19"))


def _require_file(path: Path, url: str, what: str, hint: str) -> None:
    if not path.is_file():
        raise MissingWeightsError(
            f"{what} needs the pretrained weight file {path}, which is not in the torch hub "
            f"cache (torch.hub.get_dir() = {torch.hub.get_dir()}). Nothing is downloaded "
            f"automatically. On a machine with internet access download {url} and copy it to "
            f"{path} (or set TORCH_HOME so that the cache holds it). Otherwise {hint}."
        )


def exclude_from_state_dict(module: nn.Module) -> nn.Module:
    """Keep ``module``'s parameters and buffers out of its parents' ``state_dict()``.

    For frozen pretrained backbones inside losses/metrics: saving drops every key under the
    module's prefix, and loading fills them with the module's current values, so strict
    loading neither misses them nor overwrites them with stale copies from old checkpoints
    (values present in the loaded dict are kept, though). Returns ``module``.
    """

    def drop(mod: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            del state_dict[key]

    def fill(
        mod: nn.Module,
        state_dict: dict,
        prefix: str,
        local_metadata: dict,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        current: dict[str, torch.Tensor] = {}
        mod._save_to_state_dict(current, prefix, keep_vars=False)
        for name, child in mod.named_children():
            current.update(child.state_dict(prefix=f"{prefix}{name}.", keep_vars=False))
        for key, value in current.items():
            state_dict.setdefault(key, value)

    if hasattr(module, "register_state_dict_post_hook"):
        module.register_state_dict_post_hook(drop)
    else:  # torch < 2.5
        module._register_state_dict_hook(drop)
    module.register_load_state_dict_pre_hook(fill)
    return module


def _vgg_layers(arch: str, last_index: int) -> nn.Sequential:
    """torchvision's ``vgg*().features`` up to ``last_index`` (inclusive), ReLUs not in-place."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in VGG_CONFIGS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
            in_channels = int(item)
    return nn.Sequential(*layers[: last_index + 1])


class VGGFeatures(nn.Module):
    """Frozen VGG16/VGG19 feature extractor: ``forward(x) -> {layer_name: activation}``.

    Args:
        arch: ``"vgg19"`` (EdgeConnect, StructureFlow, structure knowledge) or ``"vgg16"``
            (CTSDG and the PConv family, CSA).
        layers: names among :data:`VGG_LAYER_INDICES` of the arch: ``reluB_K`` (after a conv)
            or ``poolB`` (after a max-pool); the network is truncated after the deepest one.
        weights: ``"imagenet"`` (torchvision ``IMAGENET1K_V1``, read from the torch hub cache;
            :class:`MissingWeightsError` when absent, nothing is downloaded) or ``"random"``
            (same architecture, torchvision's random init, logs a warning; timing/tests only).
        normalize_input: apply ImageNet mean/std to a ``[0, 1]`` input first (what the
            torchvision weights expect). Default ``False``: the official codes of EdgeConnect,
            StructureFlow and CTSDG feed their images without normalisation, which this
            reproduces.
        save_weights: include the frozen weights in ``state_dict()`` (default ``False``, see
            :func:`exclude_from_state_dict`).

    Inputs: ``(B, 3, H, W)`` (a 1-channel input is repeated to 3). Parameters never require grad
    and the module stays in eval mode; gradients flow to the input.

    Example:
        >>> vgg = VGGFeatures("vgg16", ["relu1_2", "pool1"], weights="random")
        >>> {k: tuple(v.shape) for k, v in vgg(torch.rand(1, 3, 32, 32)).items()}
        {'relu1_2': (1, 64, 32, 32), 'pool1': (1, 64, 16, 16)}
    """

    def __init__(
        self,
        arch: str,
        layers: Sequence[str],
        weights: str = "imagenet",
        normalize_input: bool = False,
        save_weights: bool = False,
    ) -> None:
        super().__init__()
        if arch not in VGG_CONFIGS:
            raise ValueError(f"unknown VGG arch {arch!r}; choose one of {sorted(VGG_CONFIGS)}")
        indices = VGG_LAYER_INDICES[arch]
        layers = list(dict.fromkeys(layers))
        unknown = [name for name in layers if name not in indices]
        if unknown or not layers:
            raise ValueError(
                f"unknown {arch} layers {unknown or layers}; choose among {', '.join(indices)}"
            )
        if weights not in WEIGHT_CHOICES:
            raise ValueError(f"weights must be one of {WEIGHT_CHOICES}, got {weights!r}")
        self.arch = arch
        self.layer_names = tuple(layers)
        self.weights = weights
        self.normalize_input = bool(normalize_input)
        self._index_to_name = {indices[name]: name for name in layers}
        last = max(self._index_to_name)
        self.features = _vgg_layers(arch, last)
        if weights == "imagenet":
            url = vgg_weights_url(arch)
            path = hub_checkpoint_path(url)
            _require_file(path, url, f"{arch.upper()} features (weights='imagenet')", _NO_VGG_HINT)
            state = torch.load(path, map_location="cpu", weights_only=True)
            prefix = "features."
            sub_state = {
                key[len(prefix) :]: value
                for key, value in state.items()
                if key.startswith(prefix) and int(key.split(".")[1]) <= last
            }
            self.features.load_state_dict(sub_state, strict=True)
        else:
            logger.warning(
                "%s features: RANDOM weights (weights='random'); losses computed with them are "
                "meaningless - use only for timing and tests",
                arch.upper(),
            )
            for module in self.features.modules():
                if isinstance(module, nn.Conv2d):  # torchvision's VGG initialisation
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(module.bias)

        self.register_buffer(
            "mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False
        )
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        super().train(False)
        if not save_weights:
            exclude_from_state_dict(self)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always stays in eval mode (frozen backbone)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected (B, 3, H, W) input, got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.normalize_input:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        outputs: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._index_to_name:
                outputs[self._index_to_name[index]] = x
        return {name: outputs[name] for name in self.layer_names}

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, layers={list(self.layer_names)}, weights={self.weights!r}, "
            f"normalize_input={self.normalize_input}"
        )


class VGG19Features(VGGFeatures):
    """:class:`VGGFeatures` with ``arch="vgg19"`` (the name the VGG19 losses use)."""

    def __init__(
        self,
        layers: Sequence[str],
        weights: str = "imagenet",
        normalize_input: bool = False,
        save_weights: bool = False,
    ) -> None:
        super().__init__("vgg19", layers, weights, normalize_input, save_weights)


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, C)``: ``F F^T / (C H W)``, always computed in float32."""
    if features.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got {tuple(features.shape)}")
    batch, channels, height, width = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        flat = features.float().reshape(batch, channels, height * width)
        return torch.bmm(flat, flat.transpose(1, 2)) / (channels * height * width)


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(a.float(), b.float())


def _check_extractor_layers(extractor: nn.Module, needed: Sequence[str]) -> None:
    names = getattr(extractor, "layer_names", None)
    if names is not None and not set(needed) <= set(names):
        raise ValueError(f"extractor gives {list(names)}, needs {sorted(set(needed))}")


def _perceptual(
    fp: Mapping[str, torch.Tensor], ft: Mapping[str, torch.Tensor], weights: Mapping[str, float]
) -> torch.Tensor:
    total = next(iter(fp.values())).new_zeros((), dtype=torch.float32)
    for name, weight in weights.items():
        total = total + float(weight) * _l1(fp[name], ft[name])
    return total


def _style(
    fp: Mapping[str, torch.Tensor], ft: Mapping[str, torch.Tensor], layers: Sequence[str]
) -> torch.Tensor:
    total = next(iter(fp.values())).new_zeros((), dtype=torch.float32)
    for name in layers:
        with torch.no_grad():
            target_gram = gram_matrix(ft[name])
        total = total + _l1(gram_matrix(fp[name]), target_gram)
    return total


class PerceptualLoss(nn.Module):
    """``sum_l w_l * L1(F_l(pred), F_l(target))`` on VGG19 features (target under no_grad).

    Args:
        layer_weights: ``{layer: weight}``; default EdgeConnect's relu1_1..relu5_1, all 1.
        weights: ``"imagenet"`` | ``"random"`` (see :class:`VGG19Features`).
        extractor: use this feature extractor instead of building one (e.g. shared).
        normalize_input: ImageNet normalisation of the input (default off, as EdgeConnect).
    """

    def __init__(
        self,
        layer_weights: Mapping[str, float] | None = None,
        weights: str = "imagenet",
        extractor: nn.Module | None = None,
        normalize_input: bool = False,
    ) -> None:
        super().__init__()
        self.layer_weights = dict(
            DEFAULT_PERCEPTUAL_LAYERS if layer_weights is None else layer_weights
        )
        if extractor is None:
            extractor = VGG19Features(list(self.layer_weights), weights, normalize_input)
        _check_extractor_layers(extractor, list(self.layer_weights))
        self.extractor = extractor

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        features_pred = self.extractor(pred)
        with torch.no_grad():
            features_target = self.extractor(target)
        return _perceptual(features_pred, features_target, self.layer_weights)


class StyleLoss(nn.Module):
    """``sum_l L1(Gram(F_l(pred)), Gram(F_l(target)))`` on VGG19 features (target no_grad).

    Gram matrices are computed in float32 even under autocast. Default layers: EdgeConnect's
    ``relu2_2, relu3_4, relu4_4, relu5_2``. EdgeConnect applies it to ``(pred * m, target * m)``.
    """

    def __init__(
        self,
        layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
        weights: str = "imagenet",
        extractor: nn.Module | None = None,
        normalize_input: bool = False,
    ) -> None:
        super().__init__()
        self.layers = tuple(layers)
        if extractor is None:
            extractor = VGG19Features(self.layers, weights, normalize_input)
        _check_extractor_layers(extractor, self.layers)
        self.extractor = extractor

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        features_pred = self.extractor(pred)
        with torch.no_grad():
            features_target = self.extractor(target)
        return _style(features_pred, features_target, self.layers)


class VGGLoss(nn.Module):
    """Perceptual + style losses sharing **one** VGG19 (truncated at the deepest needed layer).

    ``forward(pred, target, style_pred=None, style_target=None)`` returns the **unweighted**
    terms ``{"perceptual": P(pred, target), "style": S(style_pred, style_target)}`` as float32
    scalars; the caller multiplies by its loss weights (or uses :meth:`weighted_sum`). The
    weights given here decide what is computed: a term whose weight is 0 is a zero tensor and
    needs no VGG layer; with both weights 0 no VGG is built at all (no weight file needed) and
    ``self.extractor`` is ``None``.

    ``style_pred``/``style_target`` default to ``pred``/``target``; EdgeConnect passes
    ``(pred * m, target * m)``. When the style inputs are the same tensor objects as the
    perceptual ones, VGG runs once per tensor. Target features are computed under no_grad.
    """

    def __init__(
        self,
        perceptual_weight: float,
        style_weight: float,
        weights: str = "imagenet",
        perceptual_layers: Mapping[str, float] | None = None,
        style_layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
        normalize_input: bool = False,
        extractor: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.perceptual_weight = float(perceptual_weight)
        self.style_weight = float(style_weight)
        self.perceptual_layers = dict(
            DEFAULT_PERCEPTUAL_LAYERS if perceptual_layers is None else perceptual_layers
        )
        self.style_layers = tuple(style_layers)
        needed: list[str] = []
        if self.perceptual_weight != 0:
            needed += list(self.perceptual_layers)
        if self.style_weight != 0:
            needed += list(self.style_layers)
        needed = list(dict.fromkeys(needed))
        self.extractor: nn.Module | None
        if not needed:
            self.extractor = None
        elif extractor is not None:
            _check_extractor_layers(extractor, needed)
            self.extractor = extractor
        else:
            self.extractor = VGG19Features(needed, weights, normalize_input)

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        style_pred: torch.Tensor | None = None,
        style_target: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        zero = torch.zeros((), device=pred.device, dtype=torch.float32)
        result = {"perceptual": zero, "style": zero.clone()}
        if self.extractor is None:
            return result
        style_pred = pred if style_pred is None else style_pred
        style_target = target if style_target is None else style_target
        use_perceptual = self.perceptual_weight != 0
        use_style = self.style_weight != 0

        features_pred = features_target = None
        if use_perceptual or style_pred is pred:
            features_pred = self.extractor(pred)
        if use_perceptual or style_target is target:
            with torch.no_grad():
                features_target = self.extractor(target)
        if use_perceptual:
            result["perceptual"] = _perceptual(
                features_pred, features_target, self.perceptual_layers
            )
        if use_style:
            fsp = features_pred if style_pred is pred else self.extractor(style_pred)
            if style_target is target:
                fst = features_target
            else:
                with torch.no_grad():
                    fst = self.extractor(style_target)
            result["style"] = _style(fsp, fst, self.style_layers)
        return result

    def weighted_sum(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``perceptual_weight * terms["perceptual"] + style_weight * terms["style"]``."""
        return self.perceptual_weight * terms["perceptual"] + self.style_weight * terms["style"]

    def extra_repr(self) -> str:
        return f"perceptual_weight={self.perceptual_weight}, style_weight={self.style_weight}"
