"""inpaintzoo: a PyTorch Lightning model zoo of structure-aware image inpainting methods.

>>> from inpaintzoo import zoo
>>> zoo.list_models()  # doctest: +SKIP
['edgeconnect', 'navier_stokes', 'telea']
"""

__version__ = "0.1.0"
