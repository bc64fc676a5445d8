"""Generate the student notebook (labs/) and the worked solution (solutions/) from the master."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat
from nbgrader.apps import NbGraderAPI
from nbgrader.converters import GenerateSolution

from course_tools.notebooks import clean, normalised, set_colab_button

from .config import ASSIGNMENT, REPO, repository_config


def generate(output_root: Path = REPO) -> list[Path]:
    """Write ``labs/`` and ``solutions/`` under ``output_root`` (default: the repository)."""
    with tempfile.TemporaryDirectory() as scratch:
        config = repository_config(Path(scratch) / "gradebook.db")
        config.CourseDirectory.release_directory = str(Path(scratch) / "labs")
        config.CourseDirectory.solution_directory = str(Path(scratch) / "solutions")
        api = NbGraderAPI(config=config)
        result = api.generate_assignment(ASSIGNMENT)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('log', '')}")
        solution = GenerateSolution(coursedir=api.coursedir, config=config)
        solution.coursedir.assignment_id = ASSIGNMENT
        solution.start()
        written = []
        for kind in ("labs", "solutions"):
            target = Path(output_root) / kind / ASSIGNMENT
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(Path(scratch) / kind / ASSIGNMENT, target)
            for path in sorted(target.rglob("*.ipynb")):
                nb = nbformat.read(path, as_version=4)
                clean(nb)
                set_colab_button(nb, REPO / kind / ASSIGNMENT / path.name)  # its own address
                path.write_text(normalised(nb), encoding="utf-8")
                written.append(path)
        return written
