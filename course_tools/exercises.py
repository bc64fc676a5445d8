"""Run each lecture's exercise solutions, in order, after the lecture, as a learner would.

    python -m course_tools.exercises [NOTEBOOK ...]   # default: every lecture

A lecture runs top to bottom in a fresh kernel, then the ``python`` blocks of the solutions
in its Exercises section run one after the other in that kernel. What each block prints is
shown, so a maintainer can compare it with the answer the solution states; a block that
fails, or breaks a later one, is reported. (Not part of CI: the exercises retrain models, a
few minutes per lecture.)
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbclient
import nbformat

REPO = Path(__file__).resolve().parent.parent
SOLUTION_CODE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def exercise_blocks(nb: nbformat.NotebookNode) -> list[str]:
    """The code blocks of the solutions under the notebook's ``## Exercises`` heading."""
    start = next(
        (
            i
            for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and c.source.startswith("## Exercises")
        ),
        len(nb.cells),
    )
    text = "\n".join(c.source for c in nb.cells[start:] if c.cell_type == "markdown")
    return SOLUTION_CODE.findall(text)


def run_exercises(path: Path, kernel: str = "python3") -> list[tuple[str, bool]]:
    """Run ``path``, then its exercise blocks: ``(what each block printed, whether it ran)``."""
    nb = nbformat.read(path, as_version=4)
    first = len(nb.cells)
    nb.cells += [nbformat.v4.new_code_cell(block) for block in exercise_blocks(nb)]
    client = nbclient.NotebookClient(
        nb, timeout=1800, kernel_name=kernel, resources={"metadata": {"path": str(path.parent)}}
    )
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            try:
                client.execute_cell(cell, index)
            except nbclient.exceptions.CellExecutionError as error:
                if index < first:
                    raise  # the lecture itself fails: its own test says where
                print(f"{path.name}, exercise {index - first + 1}: {error}", file=sys.stderr)
    results = []
    for cell in nb.cells[first:]:
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        ran = not any(o.output_type == "error" for o in cell.outputs)
        results.append((printed, ran))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    failed = 0
    for path in args.notebooks or sorted((REPO / "notebooks").glob("*.ipynb")):
        started = time.perf_counter()
        results = run_exercises(path)
        print(f"{path.name}: {len(results)} exercises, {time.perf_counter() - started:.0f} s")
        for number, (printed, ran) in enumerate(results, start=1):
            print(f"  exercise {number}: {'ran' if ran else 'FAILED'}")
            print("".join(f"    {line}\n" for line in printed.rstrip().splitlines()[-20:]), end="")
            failed += not ran
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
