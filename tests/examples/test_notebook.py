"""docs/examples/calibrate_program_analyse.ipynb runs, top to bottom, on the simulator.

Executed with nbclient in a real Jupyter kernel of this interpreter (ipykernel), as a user
would run it; the notebook's last cell asserts its own figures (no faults, every
programmed cell within 1 % of its prediction). About 10 s: the kernel start, a
calibration of 32 cells of the small board and a 3-2 layer programmed onto 16 cells.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
import xarray as xr
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "docs" / "examples" / "calibrate_program_analyse.ipynb"


@pytest.mark.slow
def test_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook without outputs (Jupyter: Clear All Outputs)"
    )
    monkeypatch.setenv("LABRSS_NOTEBOOK_DIR", str(tmp_path))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel shows figures inline
    root = NOTEBOOK.parents[2]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(root)}}
    ).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3  # the calibration maps, the readings, predicted vs measured
    with xr.open_dataset(tmp_path / "program.nc") as ds:
        assert ds["check.L0T0.measured_S"].dims == ("L0T0.row", "L0T0.column")
        assert ds.attrs["run_kind"] == "program"
