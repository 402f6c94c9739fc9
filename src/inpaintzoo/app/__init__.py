"""The interactive inpainting app (``inpaintzoo-app``, needs ``pip install inpaintzoo[app]``).

:mod:`inpaintzoo.app.pipeline` holds the edit pipeline as plain functions (mask, edited edges
and placed object edges -> predictor -> composite) and imports no gradio;
:mod:`inpaintzoo.app.ui` is the gradio page over it; ``inpaintzoo.cli.app`` the entry point.
"""

from inpaintzoo.app.pipeline import AppError, EdgeMaps, ModelEntry, edge_guided

__all__ = ["AppError", "EdgeMaps", "ModelEntry", "edge_guided"]
