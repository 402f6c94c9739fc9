"""Every docstring example of the package runs as a doctest in the default suite.

Modules are found by walking ``inpaintzoo``; a module whose optional extra is not installed is
skipped with the missing package named (``make install`` installs every extra, so CI runs all).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import inpaintzoo

MODULES = sorted(m.name for m in pkgutil.walk_packages(inpaintzoo.__path__, prefix="inpaintzoo."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:  # an optional extra (gradio, onnx, ...) not installed
        pytest.skip(f"{name} needs {err.name}, which is not installed")
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):  # each test runs in a copy of the module's globals
        if test.examples:
            runner.run(test, clear_globs=True)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (see above)"
