"""Build the fixture submissions described by the JSON files in this folder, one folder
per lab (``<lab>/manifest.json`` and its fixtures).

A fixture ``<name>.json`` starts from the worked solution (``"start": "solutions"``) or the
released student notebook (``"labs"``), merges its top-level ``"metadata"`` (if any) into the
notebook's metadata (key by key: a ``kernelspec`` given there replaces the old one), then
applies ``edits`` in order. An edit names a cell by grade id (the first cell with it):

* ``{"cell": id, "replace": text, "with": text}``: ``text`` must occur exactly once;
* ``{"cell": id, "append": text}``: a new last line (or lines);
* ``{"cell": id, "source": text}``: the whole new source;
* ``{"cell": id, "solution": true}``: the source of that cell in the worked solution;
* ``{"cell": id, "unanswered": true}``: the student stub ``# YOUR CODE HERE`` /
  ``raise NotImplementedError()`` as the whole source;
* ``{"cell": id, "delete": true}``; ``{"cell": id, "to_markdown": true}``;
* ``{"cell": id, "duplicate": true}``: a deep copy (same metadata, new cell id) right after;
* ``{"cell": id, "nbgrader": {...}}``: merged into the cell's nbgrader metadata; ``null``
  removes the nbgrader metadata;
* ``{"after": id, "insert": text}``: a new plain code cell after that cell.

New cells get deterministic ids, so a build is byte-for-byte reproducible. A fixture
``<name>.raw`` is copied byte for byte as ``<name>.ipynb`` (invalid or foreign files).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LAB = "cats_vs_dogs"  # the default lab of the functions below
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def manifest(lab: str = LAB) -> dict:
    """The expected scores of every fixture of ``lab``."""
    return json.loads((HERE / lab / "manifest.json").read_text())


def start(kind: str, lab: str = LAB) -> Path:
    """The notebook a fixture starts from: ``"solutions"`` or ``"labs"`` (the student's)."""
    return REPO / kind / lab / f"{lab}.ipynb"


def _cell(nb, grade_id: str):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell {grade_id!r}")


def _new_id(nb, base: str) -> str:
    taken = {cell.get("id") for cell in nb.cells}
    number = 1
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


def _edit(nb, name: str, edit: dict, lab: str) -> None:
    if "after" in edit:
        at = nb.cells.index(_cell(nb, edit["after"]))
        new = nbformat.v4.new_code_cell(edit["insert"], id=_new_id(nb, "added"))
        nb.cells.insert(at + 1, new)
        return
    cell = _cell(nb, edit["cell"])
    if "replace" in edit:
        if cell.source.count(edit["replace"]) != 1:
            raise ValueError(f"{name}: {edit['replace']!r} is not exactly once in {edit['cell']}")
        cell.source = cell.source.replace(edit["replace"], edit["with"])
    elif "append" in edit:
        cell.source = cell.source.rstrip("\n") + "\n" + edit["append"]
    elif "source" in edit:
        cell.source = edit["source"]
    elif edit.get("solution"):
        cell.source = _cell(
            nbformat.read(start("solutions", lab), as_version=4), edit["cell"]
        ).source
    elif edit.get("unanswered"):
        cell.source = STUB
    elif edit.get("delete"):
        nb.cells.remove(cell)
    elif edit.get("to_markdown"):
        cell.cell_type = "markdown"
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
    elif edit.get("duplicate"):
        twin = copy.deepcopy(cell)
        twin.id = _new_id(nb, f"{cell.id}-copy")
        nb.cells.insert(nb.cells.index(cell) + 1, twin)
    elif "nbgrader" in edit:
        if edit["nbgrader"] is None:
            del cell.metadata["nbgrader"]
        else:
            cell.metadata["nbgrader"].update(edit["nbgrader"])
    else:
        raise ValueError(f"{name}: unknown edit {edit!r}")


def build_one(name: str, folder: Path, lab: str = LAB) -> Path:
    """Write ``lab``'s fixture ``name`` into ``folder`` as ``<name>.ipynb``."""
    target = Path(folder) / f"{name}.ipynb"
    raw = HERE / lab / f"{name}.raw"
    if raw.exists():
        shutil.copyfile(raw, target)
        return target
    spec = json.loads((HERE / lab / f"{name}.json").read_text())
    nb = nbformat.read(start(spec["start"], lab), as_version=4)
    nb.metadata.update(spec.get("metadata", {}))
    for edit in spec.get("edits", []):
        _edit(nb, name, edit, lab)
    nbformat.write(nb, target)
    return target


def build_all(folder: Path, names: list[str] | None = None, lab: str = LAB) -> list[Path]:
    """Write every fixture of ``lab``'s manifest (or only ``names``) into ``folder``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return [build_one(name, folder, lab) for name in names or manifest(lab)["cases"]]


if __name__ == "__main__":
    import sys

    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "build/example_class")
    for lab in sys.argv[2:] or [LAB]:
        for path in build_all(folder / lab, lab=lab):
            print(f"wrote {path}")
