"""Benchmark: the memory a Gradescope container needs to grade one submission.

    python benchmarks/gradescope_memory.py [--lab cats_vs_dogs] [--fixture solution]

Builds the lab's autograder zip (``python -m grader gradescope``), lays it out as Gradescope
lays out ``/autograder`` in a temporary folder, and runs its ``run_autograder`` on a fixture
of tests/submissions (default: the worked solution) against the offline data
(``COURSE_OFFLINE_DIR``, default ``../shared/offline``; warm caches, as in the built image).
Every 0.2 s it sums the resident memory of ``run_autograder`` and all its descendants (the
grader, the student's kernel, the clean kernel); it prints the peak, the seconds taken and the
score written to results.json. The README's Gradescope section quotes the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grader.gradescope import build_autograder
from tests.submissions.build import build_one


def tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of ``root_pid`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue
        pid, parent = int(entry.name), int(fields[1])
        children.setdefault(parent, []).append(pid)
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[pid] = int(line.split()[1]) * 1024
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="cats_vs_dogs")
    parser.add_argument("--fixture", default="solution")
    args = parser.parse_args()
    os.environ.setdefault("COURSE_OFFLINE_DIR", str(REPO.parent / "shared" / "offline"))
    root = Path(tempfile.mkdtemp(prefix="gradescope-")) / "autograder"
    with zipfile.ZipFile(build_autograder(args.lab, root.parent / "autograder.zip")) as zipped:
        zipped.extractall(root / "source")
    (root / "submission").mkdir()
    build_one(args.fixture, root / "submission", lab=args.lab)
    env = {**os.environ, "GRADESCOPE_ROOT": str(root)}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    started, peak = time.monotonic(), 0
    process = subprocess.Popen(["bash", str(root / "source" / "run_autograder")], env=env)
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(0.2)
    seconds = time.monotonic() - started
    results = json.loads((root / "results" / "results.json").read_text())
    print(
        f"{args.lab} {args.fixture}: peak {peak / 2**30:.2f} GiB resident (grader and kernels), "
        f"{seconds:.0f} s, score {results['score']:g}; exit status {process.returncode}"
    )


if __name__ == "__main__":
    main()
