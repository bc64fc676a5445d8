"""Gradescope: an autograder zip that grades each submission with this grader.

``python -m grader gradescope LAB ZIP`` writes ``ZIP``: Gradescope's ``setup.sh`` (run once,
online, when Gradescope builds the autograder's image: it installs the course and grades the
untouched lab once, which downloads the photos, the weights and the held-out photos and
computes the frozen base's outputs into the image's caches) and ``run_autograder`` (run for
each submission: :func:`run_autograder` grades the notebook in ``/autograder/submission`` and
writes ``/autograder/results/results.json``), with the course's code under ``course/``.

Gradescope runs both in a Docker container whose default seccomp profile refuses the user
namespaces bubblewrap needs, so grading there is ``--no-sandbox`` (README, "Gradescope").
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import nbformat

from .checker import CLEAN_VERDICT
from .config import REPO
from .master import SOURCE, load_master
from .records import GRADER_PROBLEM, read_records

COURSE_FILES = ["pyproject.toml", "requirements.txt", "README.md", "nbgrader_config.py"]
COURSE_PACKAGES = ["grader", "tlcourse", "labchecks", "course_tools"]
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.db", "autograded", "source")
STUDENT = "student"  # the id of the one submission graded in a container

SETUP = """\
#!/usr/bin/env bash
# Gradescope runs this once, online, as root, when it builds the autograder's image
# (Base Image: Ubuntu 24.04). It installs the course, then grades the untouched lab once:
# that downloads the photos, the weights and the held-out photos and computes what the
# kernels are given into the image's caches, so that grading a submission downloads nothing.
set -euo pipefail
cd /autograder/source/course
apt-get update -qq
apt-get install -y -qq python3-venv >/dev/null
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --quiet -r requirements.txt -e .
/autograder/venv/bin/python -m grader grade labs/{lab} --out /tmp/warm-up --lab {lab} --no-sandbox
rm -rf /tmp/warm-up
"""

RUN = """\
#!/usr/bin/env bash
# Gradescope runs this for each submission: the course's grader grades it and writes
# results/results.json. GRADESCOPE_ROOT replaces /autograder (the tests give their own).
set -euo pipefail
root="${{GRADESCOPE_ROOT:-/autograder}}"
python="$root/venv/bin/python"
[ -x "$python" ] || python=python3
cd "$root/source/course"
exec "$python" -m grader.gradescope "$root" {lab}
"""


def build_autograder(lab: str, target: Path) -> Path:
    """Write the autograder zip of ``lab`` (a folder of grader/source/) to ``target``."""
    master = load_master(SOURCE / lab)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zipped:
        _add_text(zipped, "setup.sh", SETUP.format(lab=master.lab))
        _add_text(zipped, "run_autograder", RUN.format(lab=master.lab))
        with tempfile.TemporaryDirectory() as scratch:
            course = Path(scratch)
            for name in COURSE_FILES:
                shutil.copy(REPO / name, course / name)
            for package in COURSE_PACKAGES:
                shutil.copytree(REPO / package, course / package, ignore=SKIPPED)
            shutil.copytree(SOURCE / lab, course / "grader" / "source" / lab, ignore=SKIPPED)
            shutil.copytree(REPO / "labs" / lab, course / "labs" / lab, ignore=SKIPPED)
            for path in sorted(course.rglob("*")):
                if path.is_file():
                    zipped.write(path, f"course/{path.relative_to(course)}")
    return target


def _add_text(zipped: zipfile.ZipFile, name: str, text: str) -> None:
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
    info.external_attr = 0o100755 << 16  # executable, as Gradescope runs them
    zipped.writestr(info, text)


def run_autograder(root: Path, lab: str) -> dict:
    """Grade the notebook in ``root/submission`` as ``lab`` and write
    ``root/results/results.json`` (Gradescope's format); return what was written."""
    from .run import grade

    master = load_master(SOURCE / lab)
    notebooks = sorted((root / "submission").rglob("*.ipynb"))
    work = Path(tempfile.mkdtemp(prefix="gradescope-"))
    (work / "in").mkdir()
    if notebooks:
        shutil.copyfile(notebooks[0], work / "in" / f"{STUDENT}.ipynb")
        # Gradescope's container has no user namespaces for bubblewrap: plain kernels. The
        # grader's lines go to the autograder's output, which only instructors see.
        grade(work / "in", work / "out", lab=lab, sandboxed=False)
        results = results_json(work / "out" / lab, master)
    else:
        results = {"score": 0, "output": "No notebook (.ipynb) was submitted.", "tests": []}
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").write_text(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return results


def results_json(out: Path, master) -> dict:
    """Gradescope's results of the one student graded into ``out``: one test per part, with
    its points, maximum and the line that says why points were lost; the parts measured in
    the clean kernel (held-out accuracy) are shown once the grades are published."""
    record = read_records(out, log=lambda line: None)[STUDENT]
    if record.status == GRADER_PROBLEM:
        raise RuntimeError(f"the grader could not grade this submission: {record.note}")
    lines = _lines(out / "autograded" / f"{STUDENT}.ipynb", master, record.scores)
    measured = {t.part for t in master.tests if t.grade_id in master.spec.measured}
    tests = []
    for part, points in master.parts.items():
        tests.append(
            {
                "name": master.part_titles.get(part, part),
                "score": record.scores.get(part, 0.0),
                "max_score": points,
                "output": lines.get(part, ""),
                "visibility": "after_published" if part in measured else "visible",
            }
        )
    return {
        "score": record.total,
        "output": record.note,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _lines(notebook: Path, master, scores: dict[str, float]) -> dict[str, str]:
    """Per part, the line shown with its points: why it lost points (its test cells' first
    error), else, for a part measured in the clean kernel, what was measured there (the
    held-out accuracy); never a line of the hidden tests."""
    if not notebook.exists():
        return {}
    parts = {test.grade_id: test.part for test in master.tests}
    measured = {parts[grade_id] for grade_id in master.spec.measured if grade_id in parts}
    lines: dict[str, str] = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        part = parts.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"))
        if not part or part in lines:
            continue
        outputs = cell.get("outputs", [])
        errors = [f"{o['ename']}: {o['evalue']}" for o in outputs if o["output_type"] == "error"]
        printed = "".join(o["text"] for o in outputs if o["output_type"] == "stream")
        clean = (
            printed.split(CLEAN_VERDICT, 1)[1].split("\n", 1)[-1]
            if CLEAN_VERDICT in printed
            else ""
        )
        if scores.get(part, 0.0) < master.parts[part] and errors:
            text = errors[0]
        elif part in measured and clean.strip():
            text = clean
        else:
            continue
        line = re.sub(r"\s+", " ", (text.strip().splitlines() or [""])[0])[:300]
        if not any(quoted in line for quoted in master.hidden_lines):
            lines[part] = line
    return lines


if __name__ == "__main__":
    import sys

    run_autograder(Path(sys.argv[1]), sys.argv[2])
