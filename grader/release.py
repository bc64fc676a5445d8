"""Generate the student notebook (labs/) and the worked solution (solutions/) from the master."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat
from nbgrader.apps import NbGraderAPI
from nbgrader.converters import GenerateSolution

from course_tools.notebooks import clean, normalised, set_colab_button

from .config import REPO, repository_config
from .master import find_labs


def generate(output_root: Path = REPO) -> list[Path]:
    """Write ``labs/<lab>/`` and ``solutions/<lab>/`` of every lab under ``output_root``
    (default: the repository)."""
    return [path for lab in find_labs() for path in generate_lab(lab, output_root)]


def generate_lab(lab: str, output_root: Path = REPO) -> list[Path]:
    """Write ``labs/<lab>/`` and ``solutions/<lab>/`` under ``output_root``."""
    with tempfile.TemporaryDirectory() as scratch:
        config = repository_config(Path(scratch) / "gradebook.db")
        config.CourseDirectory.release_directory = str(Path(scratch) / "labs")
        config.CourseDirectory.solution_directory = str(Path(scratch) / "solutions")
        api = NbGraderAPI(config=config)
        result = api.generate_assignment(lab)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('log', '')}")
        solution = GenerateSolution(coursedir=api.coursedir, config=config)
        solution.coursedir.assignment_id = lab
        solution.start()
        written = []
        for kind in ("labs", "solutions"):
            target = Path(output_root) / kind / lab
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(Path(scratch) / kind / lab, target)
            for path in sorted(target.rglob("*.ipynb")):
                nb = nbformat.read(path, as_version=4)
                clean(nb)
                set_colab_button(nb, REPO / kind / lab / path.name)  # its own address
                path.write_text(normalised(nb), encoding="utf-8")
                written.append(path)
        return written
