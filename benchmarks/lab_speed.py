"""Benchmark: the lab's solution against the TensorFlow tutorial's recipe, same data, same run.

    COURSE_OFFLINE_DIR=../shared/offline python benchmarks/lab_speed.py

Runs (1) the worked solution of lab 1 (solutions/cats_vs_dogs/), top to bottom, in a
fresh kernel with an empty feature cache, then measures its `model` on the held-out photos;
(2) benchmarks/tutorial_recipe.py in a fresh process. Prints both wall times, their ratio
and both held-out accuracies. Target: ratio <= 0.35 and lab accuracy >= 98 %.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
SOLUTION = REPO / "solutions" / "cats_vs_dogs" / "cats_vs_dogs.ipynb"
HOLDOUT_CELL = """
import json, numpy as np
_right = _seen = 0
for _x, _y in tlcourse.image_dataset("holdout"):
    _p = np.asarray(model.predict_on_batch(_x)).reshape(-1)
    _right += int(np.sum((_p >= 0.5) == (np.asarray(_y).reshape(-1) >= 0.5)))
    _seen += len(_x)
print(json.dumps({"lab_holdout_accuracy": _right / _seen}))
"""


def run_lab(env: dict) -> dict:
    nb = nbformat.read(SOLUTION, as_version=4)
    os.environ.update(env)
    client = NotebookClient(
        nb,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(SOLUTION.parent)}},
    )
    started = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - started
        check = nbformat.v4.new_code_cell(HOLDOUT_CELL)
        nb.cells.append(check)
        client.execute_cell(check, len(nb.cells) - 1)
    result = json.loads(next(o.text for o in check.outputs if o.get("name") == "stdout"))
    return {"lab_seconds": round(seconds, 1), **result}


def run_recipe(env: dict) -> dict:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "tutorial_recipe.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            "COURSE_CACHE_DIR": str(Path(scratch) / "cache"),
            "KERAS_HOME": str(Path(scratch) / "keras"),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "MPLBACKEND": "Agg",
        }
        lab = run_lab(env)
        print(
            f"lab solution (cold cache): {lab['lab_seconds']:.1f} s, "
            f"held-out accuracy {lab['lab_holdout_accuracy']:.2%}",
            flush=True,
        )
        recipe = run_recipe(env)
        print(
            f"tutorial recipe (160 px, 10 epochs):  {recipe['recipe_seconds']:.1f} s, "
            f"held-out accuracy {recipe['recipe_holdout_accuracy']:.2%}"
        )
    ratio = lab["lab_seconds"] / recipe["recipe_seconds"]
    print(
        f"ratio lab / recipe: {ratio:.2f} (target <= 0.35); "
        f"lab accuracy target >= 98 %: {'met' if lab['lab_holdout_accuracy'] >= 0.98 else 'MISSED'}"
    )
    print(json.dumps({**lab, **recipe, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
