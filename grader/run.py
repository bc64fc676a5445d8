"""Grade a class: collect the submissions, grade each into one record, derive the reports.

``python -m grader grade`` calls :func:`grade`. A student whose submission was already
graded into OUT (same submission, same master) keeps their record, so a run that was
interrupted (Ctrl-C, SIGTERM, even SIGKILL) is finished by running the same command again;
``regrade`` grades everyone again. The reports are rewritten after every student.
"""

from __future__ import annotations

import signal
import warnings
from pathlib import Path

from .collect import Submission, collect
from .grading import STOP, GradingContext, grade_submission, not_graded, prepare
from .lms import Roster, read_roster
from .master import ASSIGNMENT, load_master
from .records import GRADER_PROBLEM, Record, read_records, submission_digest, write_record
from .report import write_reports
from .sandbox import SandboxLimits


def grade(
    submissions: Path,
    out: Path,
    holdout: Path | None = None,
    roster_csv: Path | None = None,
    name_regexp: str | None = None,
    log=print,
    **options,
) -> list[Record]:
    """A folder, nbgrader's layout or an LMS ZIP in; records, grades.csv and lms_grades.csv out."""
    roster = read_roster(roster_csv) if roster_csv else None
    subs = collect(submissions, Path(out) / "zip_submissions", roster, name_regexp, log)
    if Path(submissions).suffix.lower() != ".zip":
        options["hide"] = (*options.get("hide", ()), Path(submissions))
    return grade_class(subs, out, holdout, roster, log=log, **options)


def grade_class(
    subs: list[Submission],
    out: Path,
    holdout: Path | None = None,
    roster: Roster | None = None,
    log=print,
    limits: SandboxLimits | None = None,
    sandboxed: bool = True,
    hide: tuple[Path, ...] = (),
    regrade: bool = False,
) -> list[Record]:
    """Grade ``subs`` into ``out``; return the records written by this run."""
    from sqlalchemy.exc import SAWarning

    import tlcourse

    # nbgrader's gradebook triggers harmless SQLAlchemy session warnings on every student.
    warnings.filterwarnings("ignore", category=SAWarning)
    out = Path(out).resolve()
    (out / "records").mkdir(parents=True, exist_ok=True)
    master = load_master()
    records = read_records(out)
    if holdout:  # checked before anyone is graded; the default is found when first needed
        holdout = tlcourse.data.check_image_folder(holdout)
    log(
        f"Grading {len(subs)} submission(s) of {ASSIGNMENT} into {out} "
        f"({'sandboxed kernels' if sandboxed else 'NOT sandboxed: trusted notebooks only'})"
    )
    context: GradingContext | None = None
    graded: list[Record] = []
    STOP.clear()
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for number, sub in enumerate(subs, 1):
            progress = f"[{number}/{len(subs)}] {sub.student_id} ..."
            if not regrade and _kept(records.get(sub.student_id), sub, master.digest):
                log(f"{progress} already graded, kept (--regrade grades it again)")
                continue
            if context is None and not sub.problem:
                holdout = holdout or tlcourse.holdout_dir()
                log(f"Preparing what the kernels are given (held-out photos: {holdout}) ...")
                context = prepare(out, holdout, limits, sandboxed, tuple(hide))
            log(progress, end=" ", flush=True)
            _forget(out, sub.student_id)
            record = not_graded(sub) if sub.problem else grade_submission(sub, context)
            write_record(out, record)
            records[sub.student_id] = record
            graded.append(record)
            write_reports(out, records, master, roster)
            log(
                f"{record.total:g} points ({record.seconds:.0f} s)"
                + (f"  -- {record.note}" if record.note else "")
            )
        path = write_reports(out, records, master, roster)
    finally:
        if context:
            context.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log(f"Wrote {path} and {out / 'feedback'}/")
    problems = sorted(s for s, r in records.items() if r.status == GRADER_PROBLEM)
    if problems:
        log(
            f"GRADER PROBLEM: {len(problems)} student(s) could not be graded because of the "
            f"grader, not their work: {', '.join(problems)}. Their rows in grades.csv say "
            "what to fix; they are not in lms_grades.csv. Run the same command again after "
            "the fix to grade them."
        )
    return graded


def _stop(signum, frame) -> None:
    # Ctrl-C or SIGTERM (a job scheduler): the student being graded is not recorded.
    STOP.set()
    raise KeyboardInterrupt


def _forget(out: Path, student_id: str) -> None:
    """Remove what an earlier grading of ``student_id`` left beside its record."""
    (out / "feedback" / f"{student_id}.html").unlink(missing_ok=True)
    (out / "autograded" / f"{student_id}.ipynb").unlink(missing_ok=True)


def _kept(record: Record | None, sub: Submission, master_digest: str) -> bool:
    """True when ``record`` holds the grading of this very submission, which stands."""
    return (
        record is not None
        and record.status != GRADER_PROBLEM
        and record.digest == submission_digest(master_digest, sub.path)
    )
