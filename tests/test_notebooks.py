"""The notebooks in notebooks/ run headless without a cell error (``make test-notebooks``).

Each notebook is executed with nbclient in a temporary working directory (nothing lands in the
repository) on a kernel that runs *this* interpreter: a kernel spec written to a temporary
``JUPYTER_PATH`` entry points at ``sys.executable``, so the venv that runs pytest (with
inpaintzoo installed) is the one that runs the cells, whatever other ``python3`` kernels the
user has installed, and nothing is installed into ``~/.local/share/jupyter``.

The stored notebooks must be clean (no outputs, no execution counts); that check is fast and
runs in the default suite.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL_NAME = "inpaintzoo-pytest"


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def test_notebooks_exist():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(path: Path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [
        i
        for i, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have stored outputs; clear them before committing"
    )


@pytest.fixture
def this_interpreter_kernel(tmp_path_factory, monkeypatch) -> str:
    """A Jupyter kernel spec running ``sys.executable -m ipykernel_launcher``."""
    pytest.importorskip("ipykernel", reason="ipykernel is a dev dependency: pip install -e .[dev]")
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "inpaintzoo tests (this interpreter)",
                "language": "python",
            }
        )
    )
    # JUPYTER_PATH comes first in the kernel-spec search path.
    monkeypatch.setenv("JUPYTER_PATH", str(root))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    return KERNEL_NAME


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path: Path, tmp_path: Path, this_interpreter_kernel: str):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=this_interpreter_kernel,
        timeout=600,
        resources={"metadata": {"path": str(tmp_path)}},  # the kernel's working directory
    )
    try:
        client.execute()
    except CellExecutionError as err:  # names the cell and shows its traceback
        pytest.fail(f"{path.name} failed:\n{err}", pytrace=False)
    errors = [
        (i, out.get("ename"), out.get("evalue"))
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: cell errors {errors}"
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in ran), "some code cells did not run"
    assert not any(Path(tmp_path).glob("lightning_logs")), "the notebook wrote Lightning logs"


def test_leaderboard_notebook_is_collected():
    """notebooks/leaderboard.ipynb (issue 4) runs in ``test_notebook_runs`` (marked notebook)."""
    assert NOTEBOOK_DIR / "leaderboard.ipynb" in NOTEBOOKS
    nb = json.loads((NOTEBOOK_DIR / "leaderboard.ipynb").read_text(encoding="utf-8"))
    source = "".join("".join(c["source"]) for c in nb["cells"])
    assert "load_results" in source and "INPAINTZOO_RESULTS" in source
