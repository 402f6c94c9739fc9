"""LightningModules: the shared GAN loop (:mod:`base`) and one thin subclass per method."""

from inpaintzoo.methods.base import InpaintingModule, NonFiniteLossError

__all__ = ["InpaintingModule", "NonFiniteLossError"]
