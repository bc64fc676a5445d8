"""Benchmark: what grading adds to a notebook, phase by phase, against running it plainly.

    python benchmarks/grading_speed.py [--lab cats_vs_dogs] [--copies 2] [--class]
    python benchmarks/grading_speed.py --jobs-compare 1 4

On the offline data (``COURSE_OFFLINE_DIR``, default ``../shared/offline``), in one run:

For ``--lab`` (default: lab 1, ``cats_vs_dogs``):

1. the worked solution executed plainly with nbclient, twice (the first run warms the Keras
   and feature caches; the second is timed);
2. the grader prepared once for the run (its caches: features of the training, validation
   and held-out photos), then ``--copies`` copies of the worked solution and of the untouched
   lab graded one after another, exactly as ``python -m grader grade`` grades each student,
   with the seconds of each phase: preparing the submission, starting the sandboxed kernel,
   the notebook, the clean-kernel check, the rest of nbgrader's autograde, the feedback,
   and writing the record and the reports;
3. with ``--class``, the whole fixture class of tests/submissions graded by the real command,
   with the test suite's limits (30 s per cell, 600 s per notebook), one student at a time;
4. with ``--jobs-compare COPIES ...`` (and only that): for each COPIES, COPIES of each of
   four fixtures (the solution, a near miss, an untrained head, the untouched lab) graded by
   the real command with its default jobs, with ``--jobs 1`` and with ``--jobs 2``, warm
   caches: the seconds and throughput of each (``1 4``: classes of 4 and 16).

Targets (issue "Grade a class in minutes"): the solution graded in at most 1.6 x its plain
run, the untouched lab in at most 8 s, the fixture class in at most 15 minutes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MIXED = ("solution", "near_miss_validation_93", "untrained_head", "untouched")
PHASES = ("prepare", "kernel start", "notebook", "clean check", "nbgrader", "feedback", "record")


def plain_run(notebook: Path, folder: Path) -> float:
    """Seconds to execute ``notebook`` top to bottom in a plain local kernel."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    started = time.perf_counter()
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return time.perf_counter() - started


def grade_command(folder: Path, out: Path, *options: str) -> tuple[float, str]:
    """Seconds for ``python -m grader grade folder --out out`` with the test suite's limits,
    and the first line it printed."""
    command = [sys.executable, "-m", "grader", "grade", str(folder), "--out", str(out)]
    limits = ["--cell-timeout", "30", "--notebook-timeout", "600"]
    started = time.perf_counter()
    run = subprocess.run(
        [*command, *limits, *options], cwd=REPO, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - started, run.stdout.splitlines()[0]


def compare_jobs(work: Path, copies: int) -> None:
    """Grade ``copies`` of each of MIXED with the default jobs, --jobs 1 and --jobs 2."""
    from tests.submissions.build import build_one

    mixed = work / f"mixed{copies}"
    mixed.mkdir()
    for name in MIXED:
        for copy in range(copies):
            build_one(name, mixed).rename(mixed / f"{name}_{copy}.ipynb")
    count = len(list(mixed.glob("*.ipynb")))
    print(f"\n{count} submissions ({', '.join(MIXED)}; {copies} of each):", flush=True)
    for name, options in (
        ("default", ()),
        ("--jobs 1", ("--jobs", "1")),
        ("--jobs 2", ("--jobs", "2")),
    ):
        seconds, first = grade_command(mixed, work / f"mixed{copies}_{name[-1]}", *options)
        chosen = first.split(", ")[-1].split(" (")[0]  # "2 at a time"
        print(
            f"  {name:<9} ({chosen}): {seconds:6.1f} s, {count / seconds * 60:.1f} students a minute",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2, help="copies of each notebook to grade")
    parser.add_argument("--lab", default="cats_vs_dogs", help="the lab (grader/source/<lab>/)")
    parser.add_argument(
        "--class", dest="whole_class", action="store_true", help="also grade the fixture class"
    )
    parser.add_argument(
        "--jobs-compare",
        type=int,
        nargs="+",
        default=[],
        metavar="COPIES",
        help="only grade COPIES of each of a mix of fixtures with the default jobs, --jobs 1 "
        "and --jobs 2, for each COPIES given",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grading-speed-"))
    os.environ.setdefault("COURSE_OFFLINE_DIR", str(REPO.parent / "shared" / "offline"))
    os.environ["KERAS_HOME"] = str(work / "keras")  # before Keras is imported: a cold machine
    os.environ["COURSE_CACHE_DIR"] = str(work / "cache")
    if args.jobs_compare:
        from tests.submissions.build import build_one

        warm = work / "warm"  # fills the caches, as an instructor's earlier run has
        warm.mkdir()
        build_one("untouched", warm)
        grade_command(warm, work / "warm_graded")
        for copies in args.jobs_compare:
            compare_jobs(work, copies)
        return 0

    import warnings

    from sqlalchemy.exc import SAWarning

    import tlcourse
    from grader.collect import collect
    from grader.grading import grade_submission, prepare
    from grader.master import SOURCE, load_master
    from grader.records import write_record
    from grader.report import write_reports
    from tests.submissions.build import build_all, build_one

    warnings.filterwarnings("ignore", category=SAWarning)  # as grader.run does
    master = load_master(SOURCE / args.lab)
    solution = build_one("solution", work, args.lab)
    plain_run(solution, work)  # warms the caches
    plain = plain_run(solution, work)
    print(f"plain execution of the worked solution (nbclient, warm caches): {plain:.1f} s\n")

    folder = work / "class"
    folder.mkdir()
    for copy in range(args.copies):
        for name in ("solution", "untouched"):
            build_one(name, work, args.lab).rename(folder / f"{name}_{copy + 1}.ipynb")
    out = work / "graded"
    started = time.perf_counter()
    context = prepare(out, master.path.parent, tlcourse.holdout_dir(), hide=(folder,))
    print(
        f"grader set-up, once per run (kernels' data, caches filled): {time.perf_counter() - started:.1f} s\n"
    )
    print(f"{'student':<13}" + "".join(f"{p:>13}" for p in PHASES) + f"{'total':>9}{'score':>7}")
    records, totals = {}, {}
    try:
        for sub in collect(folder, work / "zip"):
            record = grade_submission(sub, context).record
            clock = time.perf_counter()
            write_record(out, record)
            records[sub.student_id] = record
            write_reports(out, records, master)
            phases = {**record.phases, "record": time.perf_counter() - clock}
            total = record.seconds + phases["record"]
            totals.setdefault(sub.student_id.rsplit("_", 1)[0], []).append(total)
            cells = "".join(f"{phases.get(p, 0.0):>13.2f}" for p in PHASES)
            print(f"{sub.student_id:<13}{cells}{total:>9.1f}{record.total:>7g}", flush=True)
    finally:
        context.close()
    best = min(totals["solution"])
    print(
        f"\n{args.lab} worked solution: graded in {best:.1f} s (best of {args.copies}), plain {plain:.1f} s: "
        f"{best / plain:.2f} x (target <= 1.6)"
    )
    print(f"untouched lab: graded in {min(totals['untouched']):.1f} s (target <= 8)")
    if args.whole_class:
        fixtures = work / "fixtures"
        build_all(fixtures, lab=args.lab)
        minutes = grade_command(fixtures, work / "fixtures_graded", "--jobs", "1")[0] / 60
        print(
            f"fixture class ({len(list(fixtures.glob('*')))} submissions, real command, "
            f"--jobs 1): {minutes:.1f} min (target <= 15)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
