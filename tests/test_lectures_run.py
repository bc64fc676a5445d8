"""Every lecture notebook runs top to bottom offline; every diagram it shows exists.

The execution test is slow (it runs the notebooks on the real photos): ``pytest -m slow``.
Each notebook's wall time is printed in the summary at the end of the run.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import nbclient
import nbformat
import pytest

from tlcourse.figures import ASSETS, build_all

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
ASSET_LINK = re.compile(r"\.\./assets/([\w.-]+\.png)")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs(path: Path, offline_mirror: Path, report) -> None:
    """Execute the notebook in a python3 kernel from notebooks/; report the failing cell."""
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    start = time.perf_counter()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        index = next(
            (
                i
                for i, cell in enumerate(nb.cells)
                if cell.cell_type == "code"
                and any(out.get("output_type") == "error" for out in cell.outputs)
            ),
            "?",
        )
        pytest.fail(f"{path.name}, cell {index}:\n{error}", pytrace=False)
    finally:
        report(f"{time.perf_counter() - start:7.1f} s  lecture {path.name}")


def test_referenced_assets_exist() -> None:
    """Every ../assets/X.png a notebook shows is in assets/."""
    missing = {}
    for path in NOTEBOOKS:
        text = path.read_text(encoding="utf-8")
        absent = [name for name in ASSET_LINK.findall(text) if not (ASSETS / name).is_file()]
        if absent:
            missing[path.name] = absent
    assert not missing, f"diagrams shown but not in assets/: {missing}"


def test_figures_rebuild_assets(tmp_path: Path) -> None:
    """``python -m tlcourse.figures`` draws exactly the PNGs that assets/ holds."""
    built = {path.name for path in build_all(tmp_path)}
    committed = {path.name for path in ASSETS.glob("*.png")}
    assert built == committed, (
        f"not drawn by tlcourse.figures: {sorted(committed - built)}; "
        f"drawn but missing from assets/: {sorted(built - committed)}"
    )
