"""CSA — Coherent Semantic Attention (Liu, Jiang, Xiao, Yang, ICCV 2019) as a LightningModule.

A rough U-Net ``netP`` fills the hole; a refinement U-Net ``netG`` with the coherent semantic
attention layer at 32x32 (:mod:`inpaintzoo.blocks.coherent_attention`) refines it. Facts from
``../shared/specs/csa.md`` §8-§9 and the official code (KumapowerLIU/CSA-inpainting
``models/CSA.py``, ``models/networks.py`` ``GANLoss``, ``models/InnerCos.py``,
``models/InnerCos2.py``, ``models/vgg16.py``, ``train.ipynb``):

* G loss = 100 [L1(fake_B, Y) + L1(fake_P, Y)] (whole image, ``[-1, 1]``, ``lambda_A``) + 0.2
  [G_ra(netD) + G_ra(netF)] (``gan_weight``) + 1 · consistency (``strength``). Terms here:
  ``l1`` and ``rough_l1`` (100 each), ``adversarial`` and ``feature_adversarial`` (0.2 each),
  ``consistency`` (1).
* **Consistency loss** (paper): the CSA layer's output and the decoder feature of the same
  level should equal VGG16 ``relu4_3`` of the ground truth in the (latent) hole: ``mean(((f -
  t) ⊙ m)²)`` for each of the two features (the official ``MSE(f ⊙ m, t)`` has the same gradient
  and a constant more).
* D loss = 0.5 D_ra(netD on images) + 0.5 D_ra(netF on VGG16 pool3 features), relativistic
  average LSGAN (:class:`~inpaintzoo.losses.AdversarialLoss` ``ralsgan``); D and F step first,
  then P and G together; the generator's relativistic terms use the real outputs of the updated
  discriminators, as the official ``backward_G`` recomputes them.
* VGG16 runs on ``[-1, 1]`` images without ImageNet normalisation (official ``Vgg16``); what the
  official code calls ``relu3_3`` is ``pool3`` (its ``slice3`` ends with the max-pool).
* The rough output enters the refinement network detached (official ``fake_P.data``): ``netP``
  learns from its own L1 term only.
* Adam lr 2e-4, betas (0.5, 0.999) for all four networks; the rate is constant for 20 epochs and
  decays linearly to 0 over 100 more (``lr_policy='lambda'``): the stages ``constant`` (1/6 of a
  run) and ``decay`` (5/6).

The official code has three behaviours the paper does not describe; each is available behind
an option for reproduction (default: the paper):

* ``official_consistency``: the consistency losses are added as ``Variable(loss.data,
  requires_grad=True)``, i.e. their value only: they train nothing;
* ``official_feature_gan``: the generator's netF term is computed on VGG features of
  ``fake_B.data``, so it trains nothing either;
* ``official_fixed_flags``: the CSA layer computes its hole flags once, from the first mask it
  sees (``fixed_mask=1``, ``cal_fixed_flag`` never reset), and reuses them for every later mask
  (the consistency masks are recomputed per mask, as in the official code).

Ours: per-sample masks and flags, any batch size (the official code needs batch size 1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from inpaintzoo.conventions import to_signed
from inpaintzoo.losses import VGGFeatures
from inpaintzoo.methods.base import InpaintingModule
from inpaintzoo.methods.contract import LearningCheck, MethodContract, Phase, Stage, register_method
from inpaintzoo.nets.csa import (
    CSA_VARIANTS,
    OFFICIAL_PARAM_COUNTS,
    build_csa_nets,
    convert_official_state_dict,
)
from inpaintzoo.utils.io import sha256_file

__all__ = ["CSA", "consistency_loss", "read_official_csa"]

#: VGG16 features: netF judges pool3 (official ``relu3_3``), the consistency target is relu4_3
FEATURE_LAYER, TARGET_LAYER = "pool3", "relu4_3"
_NETS = ("rough_generator", "refine_generator", "discriminator", "feature_discriminator")


def consistency_loss(
    features: tuple[torch.Tensor, ...],
    target: torch.Tensor,
    hole: torch.Tensor,
    official: bool = False,
) -> torch.Tensor:
    """The consistency loss summed over ``features`` (the CSA layer's output and the decoder
    feature, each (B, C, h, w)) against ``target`` (VGG16 relu4_3 of the ground truth, same
    shape) in the latent ``hole`` (B, 1, h, w).

    Paper (default): ``sum_f mean(((f - target) ⊙ hole)²)``, with gradient. ``official``: the
    official value ``sum_f MSE(f ⊙ hole, target)`` (target not masked), detached from the graph
    as the official ``backward_G`` adds it.
    """
    m = hole.to(torch.float32)
    total = target.new_zeros((), dtype=torch.float32)
    for f in features:
        if f.shape != target.shape:
            raise ValueError(
                f"consistency loss: feature {tuple(f.shape)} and VGG16 relu4_3 target "
                f"{tuple(target.shape)} differ; the CSA level needs 512 channels at H/8"
            )
        if official:
            total = total + F.mse_loss(f.float() * m, target.float())
        else:
            total = total + ((f.float() - target.float()) * m).pow(2).mean()
    return total.detach() if official else total


# ----------------------------------------------------------------------------- official weights
_FILE = re.compile(r"(?P<epoch>.+)_net_(?P<net>[GPDF])\.pth")
_FILES = {  # official label -> (network attribute, what, required)
    "G": ("refine_generator", "a CSA refinement generator (UnetGeneratorCSA)", True),
    "P": ("rough_generator", "a CSA rough generator (unet_256)", True),
    "D": ("discriminator", "a CSA patch discriminator (NLayerDiscriminator)", False),
    "F": ("feature_discriminator", "a CSA feature discriminator (PFDiscriminator)", False),
}


def _epoch(path: Path) -> tuple[Path, str]:
    from inpaintzoo.official import OfficialWeightsError

    if path.is_file():
        found = _FILE.fullmatch(path.name)
        if found is None:
            raise OfficialWeightsError(
                f"{path}: CSA checkpoints are named <epoch>_net_G.pth, _net_P.pth, _net_D.pth, "
                "_net_F.pth (official models/base_model.py save_network)",
                str(path),
            )
        return path.parent, found["epoch"]
    if not path.is_dir():
        raise FileNotFoundError(f"official CSA weights not found: {path}")
    epochs = {
        m["epoch"] for p in path.iterdir() if (m := _FILE.fullmatch(p.name)) and m["net"] == "G"
    }
    if not epochs:
        present = sorted(p.name for p in path.iterdir() if p.is_file())
        raise OfficialWeightsError(
            f"{path} holds no <epoch>_net_G.pth (the official CSA checkpoints are "
            "<epoch>_net_G.pth and <epoch>_net_P.pth); found: "
            f"{', '.join(present[:12]) or 'no files'}",
            str(path),
        )
    numbered = sorted((int(e), e) for e in epochs if e.isdigit())
    return path, numbered[-1][1] if numbered else sorted(epochs)[-1]


def _bare_state_dict(file: Path, what: str, first: str) -> dict[str, torch.Tensor]:
    from inpaintzoo.official import OfficialWeightsError
    from inpaintzoo.official.errors import describe_keys
    from inpaintzoo.official.importers import guess_network, load_weights_file

    payload = load_weights_file(file)
    ok = (
        isinstance(payload, Mapping)
        and payload
        and all(torch.is_tensor(v) for v in payload.values())
    )
    keys = [str(k) for k in payload] if isinstance(payload, Mapping) else []
    if not ok or not any(k in (first, f"module.{first}") for k in keys):
        other = guess_network(keys)
        hint = f"; it looks like {other}" if other else ""
        found = describe_keys(keys) if keys else type(payload).__name__
        raise OfficialWeightsError(
            f"{file} is not {what}: expected a state dict with {first!r}, found {found}{hint}",
            str(file),
            keys[:8],
        )
    return dict(payload)


def read_official_csa(path: str | Path):
    """Read CSA weights as the official code saves them: ``<epoch>_net_G.pth`` (refinement) and
    ``<epoch>_net_P.pth`` (rough), optionally ``<epoch>_net_D.pth`` and ``<epoch>_net_F.pth``
    (bare state dicts), given as one of the files or their folder (then the highest epoch).
    Every key is converted by name (:func:`inpaintzoo.nets.csa.convert_official_state_dict`);
    the refinement file must have 6 input channels and the rough file 3. Returns
    :class:`~inpaintzoo.official.importers.OfficialWeights`."""
    from inpaintzoo.official import OfficialWeightsError
    from inpaintzoo.official.importers import OfficialWeights

    path = Path(path)
    folder, epoch = _epoch(path)
    weights = OfficialWeights("csa", path, {}, {}, {})
    firsts = {"G": ("model.model.0.weight", 6), "P": ("model.model.0.weight", 3),
              "D": ("model.0.weight", 3), "F": ("model.0.weight", 256)}  # fmt: skip
    for label, (network, what, required) in _FILES.items():
        file = folder / f"{epoch}_net_{label}.pth"
        if not file.is_file():
            if required:
                raise OfficialWeightsError(
                    f"{folder} lacks {file.name} (a CSA release needs {epoch}_net_G.pth and "
                    f"{epoch}_net_P.pth)",
                    str(folder),
                    [file.name],
                )
            weights.notes.append(f"no {file.name}: {network} keeps its initial weights")
            continue
        key, channels = firsts[label]
        sd = _bare_state_dict(file, what, key)
        first = sd.get(key, sd.get(f"module.{key}"))
        if first.ndim != 4 or int(first.shape[1]) != channels:
            raise OfficialWeightsError(
                f"{file} is not {what}: its first conv takes {first.shape[1]} channels, not "
                f"{channels} (were the G and P files swapped?)",
                str(file),
                [key],
            )
        weights.state_dicts[network] = convert_official_state_dict(sd, network, source=str(file))
        weights.sources[network] = file.name
        weights.files[str(file)] = sha256_file(file)
    return weights


@register_method
class CSA(InpaintingModule):
    """CSA: rough + refinement U-Nets, coherent semantic attention, two RaLSGAN discriminators.

    Args (beyond :class:`InpaintingModule`'s and the contract's options):
        official_consistency: add the consistency losses without gradient, as the official code
            (reproduction only).
        official_feature_gan: compute the generator's feature-discriminator term on detached
            VGG features, as the official code (reproduction only).
        official_fixed_flags: the CSA layer keeps the latent hole flags of the first mask it
            sees, as the official code (reproduction only).
    """

    contract = MethodContract(
        name="csa",
        paper="Liu, Jiang, Xiao, Yang, Coherent Semantic Attention for Image Inpainting, ICCV 2019",
        official_repo="KumapowerLIU/CSA-inpainting",
        build_nets=build_csa_nets,
        variants=CSA_VARIANTS,
        official_params=OFFICIAL_PARAM_COUNTS,
        inference_nets=("rough_generator", "refine_generator"),
        size_multiple=256,
        min_size=256,
        sizes=lambda widths: (2 ** int(widths["num_downs"]),) * 2,
        losses={
            "l1": 100.0,
            "rough_l1": 100.0,
            "adversarial": 0.2,
            "feature_adversarial": 0.2,
            "consistency": 1.0,
        },
        lr=2e-4,
        betas=(0.5, 0.999),
        d2g_lr=1.0,
        gan_loss="ralsgan",
        stages={
            "constant": Stage("constant learning rate", trains=_NETS),
            "decay": Stage(
                "learning rate decaying linearly to 0",
                trains=_NETS,
                needs=("rough_generator", "refine_generator"),
            ),
        },
        # train.ipynb: niter 20 epochs at 2e-4, then niter_decay 100 epochs of linear decay
        paper_schedule=(Phase("constant", 20 / 120), Phase("decay", 100 / 120)),
        vgg_terms=("feature_adversarial", "consistency"),
        value_range="[-1,1]",
        onnx="its coherent semantic attention generates the hole's features one after another, "
        "one step per hole position of the input: a data-dependent loop that a traced graph "
        "cannot express",
        # lr 2e-4 (tiny, 64 px, batch 4, VGG terms off): hole PSNR +1.2 dB after 20 batches,
        # +4.1 after 40, +7.9 after 60 (0.75 s a batch on one CPU thread)
        learning=LearningCheck(batches=40, min_gain_db=2.0),
        official_reader=read_official_csa,
        official_release="no public release (KumapowerLIU/CSA-inpainting issues #6, #13, #25: "
        "weights promised, not published); the importer reads what the official code saves: "
        "checkpoints/<name>/<epoch>_net_G.pth and <epoch>_net_P.pth (+ <epoch>_net_D.pth, "
        "<epoch>_net_F.pth)",
    )
    vgg_attribute = "csa_vgg"

    def __init__(
        self,
        variant: str = "full",
        *,
        official_consistency: bool = False,
        official_feature_gan: bool = False,
        official_fixed_flags: bool = False,
        **options,
    ):
        super().__init__(variant, **options)
        self.official_consistency = bool(official_consistency)
        self.official_feature_gan = bool(official_feature_gan)
        self.official_fixed_flags = bool(official_fixed_flags)
        self._fixed_hole: torch.Tensor | None = None

    # ------------------------------------------------------------------ CSA flags
    def csa_hole(self, mask: torch.Tensor) -> torch.Tensor | None:
        """The CSA layer's latent hole mask override: ``None`` (per sample, the paper) or, with
        ``official_fixed_flags``, the first mask's flags for every sample."""
        if not self.official_fixed_flags:
            return None
        net = self.refine_generator
        size = (mask.shape[-2] // 2**net.csa_level, mask.shape[-1] // 2**net.csa_level)
        if self._fixed_hole is None:
            self._fixed_hole = net.latent_hole(mask[:1]).detach()
        if tuple(self._fixed_hole.shape[-2:]) != size:
            raise ValueError(
                "official_fixed_flags: the CSA flags were fixed at "
                f"{tuple(self._fixed_hole.shape[-2:])} by the first mask; this input needs {size} "
                "(the official code cannot change size either): use one image size or "
                "official_fixed_flags=false"
            )
        return self._fixed_hole.to(mask.device).expand(mask.shape[0], -1, -1, -1)

    # ------------------------------------------------------------------ VGG
    @property
    def csa_vgg(self) -> VGGFeatures | None:
        """VGG16 up to relu4_3 (pool3 for netF, relu4_3 for the consistency target); ``None``
        when the VGG terms are off."""
        return self.lazy_vgg(self._build_vgg)

    def _build_vgg(self) -> VGGFeatures:
        width = self.refine_generator.widths[self.refine_generator.csa_level]
        if self.weights["consistency"] and width != 512:
            raise ValueError(
                f"csa: the consistency loss compares the CSA level's features ({width} channels "
                "in this variant) with VGG16 relu4_3 (512 channels): use max_channels=512 "
                "(the full variant) or consistency_weight=0"
            )
        return VGGFeatures("vgg16", [FEATURE_LAYER, TARGET_LAYER], weights=self.backbone_weights())

    # ------------------------------------------------------------------ schedule
    def stage_lr_factor(self) -> float:
        """The paper's schedule: constant, then (stage ``decay``) linear decay towards 0 over the
        phase (official ``lr_policy='lambda'``: ``1 - k / (niter_decay + 1)`` after ``k``
        decayed epochs; here per batch)."""
        factor = super().stage_lr_factor()
        index = self.current_entry_index()
        if index is None or self.current_stage() != "decay":
            return factor
        start = sum(int(e["batches"]) for e in self.schedule[:index])
        length = int(self.schedule[index]["batches"])
        done = min(max(self.batches_seen - start, 0), length)
        return factor * (1.0 - (done + 1) / (length + 1))

    # ------------------------------------------------------------------ training
    def training_batch(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        image, mask = batch["image"], batch["mask"]
        masked = image * (1.0 - mask)
        coarse = self.rough_generator(masked, mask)
        feats = self.refine_generator.features(coarse.detach(), masked, mask, self.csa_hole(mask))
        output = feats["output"]

        d_loss, _ = self.discriminator_step("discriminator", image, output, scale=0.5)
        logs: dict[str, torch.Tensor] = {"d": d_loss.detach()}
        vgg = self.csa_vgg
        if vgg is not None:
            with torch.no_grad():
                real_vgg = vgg(to_signed(image))
            if self.official_feature_gan:
                with torch.no_grad():
                    fake_vgg = vgg(to_signed(output))
            else:
                fake_vgg = vgg(to_signed(output))
            if self.weights["feature_adversarial"]:
                f_loss, _ = self.discriminator_step(
                    "feature_discriminator",
                    real_vgg[FEATURE_LAYER],
                    fake_vgg[FEATURE_LAYER],
                    scale=0.5,
                )
                logs["d_feature"] = f_loss.detach()

        terms = {
            "l1": F.l1_loss(to_signed(output).float(), to_signed(image).float()),
            "rough_l1": F.l1_loss(to_signed(coarse).float(), to_signed(image).float()),
        }
        with self.frozen(self.discriminator), torch.no_grad():
            real_out = self.discriminator(image)  # the updated D, as backward_G recomputes it
        terms["adversarial"], _ = self.generator_adversarial("discriminator", output, real_out)
        if vgg is not None:
            if self.weights["feature_adversarial"]:
                with torch.no_grad():
                    real_f = self.feature_discriminator(real_vgg[FEATURE_LAYER])
                terms["feature_adversarial"], _ = self.generator_adversarial(
                    "feature_discriminator", fake_vgg[FEATURE_LAYER], real_f
                )
            if self.weights["consistency"]:
                terms["consistency"] = consistency_loss(
                    (feats["csa"], feats["decoder"]),
                    real_vgg[TARGET_LAYER],
                    self.refine_generator.latent_hole(mask),
                    official=self.official_consistency,
                )
        g_loss = sum(self.weights[k] * v for k, v in terms.items())
        self.optimize({"g": g_loss}, ["rough_generator", "refine_generator"], terms)
        logs.update({f"g_{k}": v.detach() for k, v in terms.items()})
        logs["g"] = g_loss.detach()
        return logs

    # ------------------------------------------------------------------ inference
    def inpaint_raw(self, image: torch.Tensor, mask: torch.Tensor, **extras: Any) -> dict:
        coarse = self.rough_generator(image, mask)
        output = self.refine_generator.features(coarse, image, mask, self.csa_hole(mask))["output"]
        return {"output": output, "coarse": coarse}

    def extra_sample_columns(self, batch: dict[str, Any], out: dict) -> dict[str, torch.Tensor]:
        mask = batch["mask"]
        return {"rough": (out["coarse"] * mask + batch["image"] * (1 - mask)).clamp(0, 1)}

    def extra_run_notes(self) -> list[str]:
        notes = []
        for flag, what in (
            ("official_consistency", "consistency losses without gradient"),
            ("official_feature_gan", "feature-GAN generator term without gradient"),
            ("official_fixed_flags", "CSA flags fixed by the first mask"),
        ):
            if getattr(self, flag):
                notes.append(f"{flag}: {what} (official-code behaviour, not the paper)")
        return notes
