"""The student bundle: what students get, written to a folder.

``python -m grader bundle OUT [--with-solutions]`` copies the lectures (notebooks/), the labs
(labs/, whose diagrams are inside the notebooks) and the helper package (tlcourse/), and writes a
pyproject.toml that installs tlcourse alone, a requirements.txt without the grader's pins and
a README for students. The grader, the hidden tests' checks (labchecks/), the tests and the
master notebooks never go in;
solutions/ only with ``--with-solutions`` (after the deadline).
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

from .config import REPO

STUDENT_FOLDERS = ("notebooks", "labs", "tlcourse")
GRADER_ONLY = {"nbgrader", "nbclient", "pytest", "ruff", "pyyaml"}  # pins students do not need
CLUTTER = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".*")

STUDENT_README = """\
# Transfer learning with TensorFlow/Keras

Lectures and labs on reusing a pretrained network: {lectures} lecture notebooks in
`notebooks/` and {count} labs in `labs/`.

## Set-up

```bash
python3 -m venv .venv && . .venv/bin/activate
pip install -r requirements.txt -e .
jupyter lab
```

Python {python} or newer; a CPU is enough. In Colab, use each notebook's "Open in Colab" button.
The first run of each notebook downloads the data and weights it needs into `~/.keras`.

## Work through

1. The lectures in `notebooks/`, in the order of their numbers.
2. The labs, in this order: {labs}. In each, write your code where it says
   `# YOUR CODE HERE`, run each part's self-check, and hand the notebook in as your teacher
   asks. Do not delete or rename cells: the grader needs them.
{solutions}"""

SOLUTIONS_NOTE = """
The worked solutions of the labs are in `solutions/`.
"""


class BundleError(Exception):
    """The bundle cannot be written; the message says why."""


def write_bundle(out: Path, with_solutions: bool = False) -> Path:
    """Write the student bundle into ``out`` (new or empty); return ``out``."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out} already exists and is not an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    folders = STUDENT_FOLDERS + (("solutions",) if with_solutions else ())
    for folder in folders:
        shutil.copytree(REPO / folder, out / folder, ignore=CLUTTER)
    (out / "pyproject.toml").write_text(student_pyproject())
    (out / "requirements.txt").write_text(student_requirements())
    lectures = len(list((out / "notebooks").glob("*.ipynb")))
    note = SOLUTIONS_NOTE if with_solutions else ""
    labs = sorted((out / "labs").glob("*/*.ipynb"))
    with open(REPO / "pyproject.toml", "rb") as handle:
        python = tomllib.load(handle)["project"]["requires-python"].lstrip(">=")
    (out / "README.md").write_text(
        STUDENT_README.format(
            lectures=lectures,
            count=len(labs),
            labs=", ".join(f"`labs/{p.parent.name}/{p.name}`" for p in labs),
            python=python,
            solutions=note,
        )
    )
    return out


def student_pyproject(repo_pyproject: Path = REPO / "pyproject.toml") -> str:
    """The repository's project metadata, installing only the tlcourse package."""
    with open(repo_pyproject, "rb") as handle:
        project = tomllib.load(handle)["project"]
    dependencies = "".join(f"    {json.dumps(dep)},\n" for dep in project["dependencies"])
    return (
        '[build-system]\nrequires = ["setuptools>=64"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        f"[project]\nname = {json.dumps(project['name'])}\n"
        f"version = {json.dumps(project['version'])}\n"
        'description = "Transfer learning with TensorFlow/Keras: lectures and a lab"\n'
        'readme = "README.md"\n'
        f"requires-python = {json.dumps(project['requires-python'])}\n"
        f"dependencies = [\n{dependencies}]\n\n"
        '[tool.setuptools.packages.find]\ninclude = ["tlcourse*"]\n'
    )


def student_requirements(repo_requirements: Path = REPO / "requirements.txt") -> str:
    """The pinned requirements without the grader's and the developers' tools."""
    kept = []
    for line in repo_requirements.read_text().splitlines():
        name = re.split(r"[=<>!~\[; ]", line.strip(), maxsplit=1)[0].lower()
        if name not in GRADER_ONLY:
            kept.append(line)
    return "\n".join(kept) + "\n"
