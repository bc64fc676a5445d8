"""Command line: ``python -m grader {release,grade}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("release", help="regenerate labs/ and solutions/ from the master notebook")
    grade = commands.add_parser("grade", help="autograde a folder of student notebooks")
    grade.add_argument("submissions", type=Path,
                       help="folder of <student_id>.ipynb files, or nbgrader's submitted/ layout")
    grade.add_argument("--out", type=Path, required=True,
                       help="output folder: grades.csv, feedback/<student_id>.html, gradebook")
    grade.add_argument("--holdout", type=Path, default=None,
                       help="held-out photos (cats/, dogs/) to measure accuracy on")
    args = parser.parse_args(argv)

    import tlcourse

    if args.command == "release":
        from .release import generate

        for path in generate():
            print(f"wrote {path}")
        return 0
    from .grading import grade_class

    try:
        grade_class(args.submissions, args.out, args.holdout)
    except tlcourse.CourseDataError as error:
        print(f"grader: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
