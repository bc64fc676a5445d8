"""Build the fixture submissions described by the JSON files in this folder.

A fixture ``<name>.json`` starts from the worked solution (``"start": "solutions"``) or the
released student notebook (``"labs"``) and applies ``edits`` to cells named by grade id:
``replace``/``with`` (the text must occur exactly once), ``append``, or ``source`` (the
whole new source). A fixture ``<name>.raw`` is copied byte for byte as ``<name>.ipynb``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
STARTS = {
    "solutions": REPO / "solutions" / "cats_vs_dogs" / "cats_vs_dogs.ipynb",
    "labs": REPO / "labs" / "cats_vs_dogs" / "cats_vs_dogs.ipynb",
}


def manifest() -> dict:
    """The expected scores of every fixture."""
    return json.loads((HERE / "manifest.json").read_text())


def _cell(nb, grade_id: str):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell {grade_id!r}")


def build_one(name: str, folder: Path) -> Path:
    """Write fixture ``name`` into ``folder`` as ``<name>.ipynb``."""
    target = Path(folder) / f"{name}.ipynb"
    raw = HERE / f"{name}.raw"
    if raw.exists():
        shutil.copyfile(raw, target)
        return target
    spec = json.loads((HERE / f"{name}.json").read_text())
    nb = nbformat.read(STARTS[spec["start"]], as_version=4)
    for edit in spec.get("edits", []):
        cell = _cell(nb, edit["cell"])
        if "replace" in edit:
            if cell.source.count(edit["replace"]) != 1:
                raise ValueError(
                    f"{name}: {edit['replace']!r} is not exactly once in {edit['cell']}"
                )
            cell.source = cell.source.replace(edit["replace"], edit["with"])
        elif "append" in edit:
            cell.source = cell.source.rstrip("\n") + "\n" + edit["append"]
        else:
            cell.source = edit["source"]
    nbformat.write(nb, target)
    return target


def build_all(folder: Path, names: list[str] | None = None) -> list[Path]:
    """Write every fixture of the manifest (or only ``names``) into ``folder``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [build_one(name, folder) for name in names or manifest()["cases"]]


if __name__ == "__main__":
    import sys

    for path in build_all(Path(sys.argv[1] if len(sys.argv) > 1 else "build/example_class")):
        print(f"wrote {path}")
