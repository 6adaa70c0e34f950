"""notebooks/tutorial.ipynb runs top to bottom (it is committed without outputs)."""

import os

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "tutorial.ipynb")


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_tutorial_notebook_executes(monkeypatch):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel is this interpreter ("python" in the python3 kernel spec resolves to sys.executable) and must
    # import this checkout, installed or not.
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": ROOT}})
    try:
        client.execute()
    except Exception as e:  # show which cell failed, not a kernel traceback wall
        pytest.fail(f"notebook failed: {str(e)[-3000:]}")
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "LR sensitivity" in outputs and "step 299" in outputs
