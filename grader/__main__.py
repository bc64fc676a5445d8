"""Command line: ``python -m grader {release,grade,gradescope,bundle}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .lms_files import LMS_FILES

EXIT_GRADER_PROBLEM = 3  # some students could not be graded because of the grader


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("release", help="regenerate labs/ and solutions/ from the master notebooks")
    grade = commands.add_parser("grade", help="autograde a folder of student notebooks")
    grade.add_argument(
        "submissions",
        type=Path,
        help="folder of <student_id>.ipynb files, nbgrader's submitted/ layout, "
        "or an LMS's ZIP of notebooks",
    )
    grade.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder: per lab, <lab>/grades.csv, <lab>/lms_grades.csv, the LMS's file, "
        "<lab>/feedback/<student_id>.html",
    )
    grade.add_argument(
        "--lab",
        default=None,
        help="the lab (a folder of grader/source/ or --source) every notebook is; default: "
        "each notebook's own graded cells tell",
    )
    grade.add_argument(
        "--source",
        type=Path,
        default=None,
        help="another nbgrader course's source/ folder: its assignments are graded too "
        "(default: SUBMISSIONS/source when SUBMISSIONS is an nbgrader course folder)",
    )
    grade.add_argument(
        "--holdout",
        type=Path,
        default=None,
        help="held-out data (one folder per class) for the labs that measure accuracy on it",
    )
    grade.add_argument(
        "--roster",
        type=Path,
        default=None,
        help="CSV with a student_id column (optional lms_id): everyone gets a row",
    )
    grade.add_argument(
        "--lms",
        choices=list(LMS_FILES),
        default=None,
        help="the LMS the grades go to, for its import file (default: the one whose file "
        "names the ZIP holds; none for a folder)",
    )
    grade.add_argument(
        "--assignment",
        default=None,
        metavar="COLUMN",
        help="the lab's column in the LMS's gradebook, as its export names it (Canvas: "
        "'Lab 1 (4567)', Blackboard: 'Lab 1 [Total Pts: 9 Score] |123456'); default: the "
        "lab's title, which the LMS imports as a new column",
    )
    grade.add_argument(
        "--name-regexp",
        default=None,
        help="regex with a (?P<student_id>...) group for ZIP member paths, "
        "as nbgrader zip_collect's named_regexp",
    )
    limits = grade.add_argument_group("limits for each submission")
    limits.add_argument(
        "--cell-timeout", type=int, default=None, help="seconds per cell (default: the lab's, 600)"
    )
    limits.add_argument(
        "--notebook-timeout", type=int, default=None, help="seconds per notebook (default 3600)"
    )
    limits.add_argument(
        "--memory-gib",
        type=float,
        default=None,
        help="memory of all its processes (default: the lab's, 8)",
    )
    grade.add_argument(
        "--regrade", action="store_true", help="grade again students already graded into OUT"
    )
    grade.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="students graded at once on this machine (default: one per core, as memory "
        "allows at --memory-gib each, and one per 4 students: fewer do not repay a worker's "
        "start-up)",
    )
    grade.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="grade on a Dask cluster: its scheduler's address (tcp://host:8786); see README",
    )
    grade.add_argument(
        "--no-sandbox",
        action="store_true",
        help="run notebooks as plain local kernels, without limits: only for notebooks you "
        "trust (the sandbox needs Linux and root)",
    )
    scope = commands.add_parser(
        "gradescope", help="write a Gradescope autograder zip that grades a lab with this grader"
    )
    scope.add_argument("lab", help="the lab (a folder of grader/source/)")
    scope.add_argument("zip", type=Path, help="the zip to write, to upload to Gradescope")
    bundle = commands.add_parser("bundle", help="write the student bundle to a folder")
    bundle.add_argument("out", type=Path, help="folder to write (must not exist or be empty)")
    bundle.add_argument(
        "--with-solutions", action="store_true", help="also include solutions/ (after the deadline)"
    )
    args = parser.parse_args(argv)

    import tlcourse

    if args.command == "release":
        from .release import generate

        for path in generate():
            print(f"wrote {path}")
        return 0
    if args.command == "gradescope":
        from .gradescope import build_autograder
        from .master import find_labs

        if args.lab not in find_labs():
            print(
                f"grader: there is no lab {args.lab!r}: {', '.join(find_labs())}", file=sys.stderr
            )
            return 2
        print(f"wrote {build_autograder(args.lab, args.zip)}: upload it as the autograder")
        return 0
    if args.command == "bundle":
        from .bundle import BundleError, write_bundle

        try:
            print(f"wrote the student bundle to {write_bundle(args.out, args.with_solutions)}")
        except BundleError as error:
            print(f"grader: {error}", file=sys.stderr)
            return 2
        return 0
    named = {
        "SUBMISSIONS": args.submissions,
        "--holdout": args.holdout,
        "--roster": args.roster,
        "--source": args.source,
    }
    for name, path in named.items():
        if path is not None and not path.exists():  # before TensorFlow is imported (seconds)
            print(f"grader: {name} {path} does not exist: check the path", file=sys.stderr)
            return 2
    from .collect import CollectError
    from .records import GRADER_PROBLEM
    from .run import grade
    from .sandbox import GiB, SandboxUnavailable

    chosen = {
        "cell_timeout": args.cell_timeout,
        "notebook_timeout": args.notebook_timeout,
        "memory": int(args.memory_gib * GiB) if args.memory_gib else None,
    }
    limits = {name: value for name, value in chosen.items() if value}  # replace the lab's
    if args.jobs is not None and args.jobs < 1:
        print("grader: --jobs must be 1 or more", file=sys.stderr)
        return 2
    try:
        records = grade(
            args.submissions,
            args.out,
            args.holdout,
            args.roster,
            args.name_regexp,
            lab=args.lab,
            source=args.source,
            lms=args.lms,
            assignment=args.assignment,
            limits=limits,
            sandboxed=not args.no_sandbox,
            regrade=args.regrade,
            jobs=args.jobs,  # None: grader.workers.default_jobs
            scheduler=args.scheduler,
        )
    except (tlcourse.CourseDataError, CollectError) as error:
        print(f"grader: {error}", file=sys.stderr)
        return 2
    except SandboxUnavailable as error:
        print(
            f"grader: {error}; or add --no-sandbox, for notebooks you trust only.",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("grader: interrupted; run the same command again to grade the rest", file=sys.stderr)
        return 130
    return EXIT_GRADER_PROBLEM if any(r.status == GRADER_PROBLEM for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
