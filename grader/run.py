"""Grade a class: collect the submissions, grade each into one record, derive the reports.

``python -m grader grade`` calls :func:`grade`. A student whose submission was already
graded into OUT (same submission, same master) keeps their record, so a run that was
interrupted (Ctrl-C, SIGTERM, even SIGKILL) is finished by running the same command again;
``regrade`` grades everyone again. Students are graded where grader/workers.py runs them;
this process (the coordinator) alone writes OUT: each student's files, then their record,
then the reports, as each student is finished.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import time
from pathlib import Path

from .collect import Submission, collect
from .config import import_tensorflow_quietly
from .grading import (
    STOP,
    Graded,
    GradingSettings,
    grade_notebook,
    not_graded,
    prepared,
    release_prepared,
)
from .lms import Roster, read_roster
from .master import ASSIGNMENT, load_master
from .records import (
    GRADER_PROBLEM,
    Record,
    out_lock,
    read_records,
    submission_digest,
    write_record,
)
from .report import write_reports
from .sandbox import SandboxLimits, SandboxUnavailable, bubblewrap, unenforced_limits
from .workers import Task, WorkerLost, default_jobs, run_tasks, threads_per_kernel


def _holding_out(function):
    """Hold OUT's lock (``out``, the second argument) for the whole call: one grader per
    OUT; a second one is refused (grader.records.out_lock) before anything is read or written."""

    @functools.wraps(function)
    def holding(first, out: Path, *args, **kwargs):
        with out_lock(out):
            return function(first, out, *args, **kwargs)

    return holding


@_holding_out
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


@_holding_out
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
    jobs: int | None = 1,
    scheduler: str | None = None,
) -> list[Record]:
    """Grade ``subs`` into ``out`` (``jobs`` at a time here, None: as many as pays, see
    :func:`grader.workers.default_jobs`; or on the Dask cluster at ``scheduler``); return
    the records written by this run."""
    import_tensorflow_quietly()
    import tlcourse

    out = Path(out).resolve()
    (out / "records").mkdir(parents=True, exist_ok=True)
    master = load_master()
    records = read_records(out, log)  # a damaged record is moved aside: graded again
    if holdout:  # checked before anyone is graded; the default is found when first needed
        holdout = tlcourse.data.check_image_folder(holdout)
    limits = limits or SandboxLimits()
    if jobs is None:
        to_grade = [
            sub
            for sub in subs
            if not sub.problem
            and (regrade or not _kept(records.get(sub.student_id), sub, master.digest))
        ]
        jobs = default_jobs(limits.memory, len(to_grade))
    where = f"on the Dask cluster at {scheduler}" if scheduler else f"{jobs} at a time"
    log(
        f"Grading {len(subs)} submission(s) of {ASSIGNMENT} into {out}, {where} ({_how(sandboxed, scheduler)})"
    )
    progress = Progress(len(subs), log)
    graded: list[Record] = []
    tasks = []
    for sub in subs:
        if not regrade and _kept(records.get(sub.student_id), sub, master.digest):
            progress.line(sub.student_id, "already graded, kept (--regrade grades it again)")
        elif sub.problem:
            record = not_graded(sub)
            _save(out, Graded(record), records, graded, master, roster)
            progress.line(sub.student_id, _outcome(record))
        else:
            tasks.append(sub)
    STOP.clear()
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if tasks and not scheduler:  # a cluster's workers find their own default
            holdout = holdout or tlcourse.holdout_dir()
        settings = GradingSettings(
            out,
            holdout,
            limits or SandboxLimits(),
            sandboxed,
            tuple(hide),
            None if scheduler else threads_per_kernel(jobs),  # on a worker: all its cores
        )
        if tasks and not scheduler:  # the data checked and the caches filled once, here
            log(f"Preparing what the kernels are given (held-out photos: {holdout}) ...")
            prepared(settings)
        work = [
            Task(sub.student_id, grade_notebook, (sub.student_id, sub.path.read_bytes(), settings))
            for sub in tasks
        ]
        progress.start(len(work))
        with contextlib.closing(run_tasks(work, jobs, scheduler)) as results:
            for task, result in results:
                if isinstance(result, tlcourse.CourseDataError | SandboxUnavailable):
                    raise result
                if isinstance(result, WorkerLost):
                    progress.line(task.key, f"not graded: {result}; the next run grades it")
                    continue
                if isinstance(result, Exception):
                    result = _grader_failure(task.key, result)
                _save(out, result, records, graded, master, roster)
                progress.line(task.key, _outcome(result.record), finished=True)
        path = write_reports(out, records, master, roster)
    finally:
        release_prepared()
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


def _how(sandboxed: bool, scheduler: str | None) -> str:
    """How kernels are run, and the limits this machine cannot enforce (checked here, before
    anyone is graded: a missing bubblewrap stops the run with what to install)."""
    if not sandboxed:
        return "NOT sandboxed: trusted notebooks only"
    if scheduler:
        return "sandboxed kernels on the workers"
    bubblewrap()
    missing = unenforced_limits()
    return "sandboxed kernels" + (f"; not enforced here: {'; '.join(missing)}" if missing else "")


class Progress:
    """One line per student as it is finished, with a running count and, once students are
    being graded, an estimate of the time left."""

    def __init__(self, total: int, log):
        self.total, self.log = total, log
        self.count = 0
        self.started = time.monotonic()
        self.to_grade = self.graded = 0

    def start(self, to_grade: int) -> None:
        self.started, self.to_grade = time.monotonic(), to_grade

    def line(self, student_id: str, what: str, finished: bool = False) -> None:
        self.count += 1
        left = ""
        if finished:
            self.graded += 1
            remaining = self.to_grade - self.graded
            if remaining:
                seconds = (time.monotonic() - self.started) / self.graded * remaining
                left = f"  [about {_duration(seconds)} left]"
        self.log(f"[{self.count}/{self.total}] {student_id} ... {what}{left}", flush=True)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _outcome(record: Record) -> str:
    if record.status == GRADER_PROBLEM:
        return f"not graded ({record.seconds:.0f} s)  -- {record.note}"
    text = f"{record.total:g} points ({record.seconds:.0f} s)"
    return text + (f"  -- {record.note}" if record.note else "")


def _save(out: Path, result: Graded, records, graded, master, roster) -> None:
    """Write one student's files, then their record (last: a record means all is there),
    then the reports."""
    record = result.record
    _forget(out, record.student_id)
    for name, data in result.files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    write_record(out, record)
    records[record.student_id] = record
    graded.append(record)
    write_reports(out, records, master, roster)


def _grader_failure(student_id: str, error: Exception) -> Graded:
    """The record of a grading that raised: the grader's problem, graded again next run."""
    master = load_master()
    zeros = {part: 0.0 for part in master.parts}
    note = (
        f"GRADER PROBLEM, not the student's: grading raised {type(error).__name__}: "
        f"{str(error)[:300]}. Run the same command again to grade them"
    )
    return Graded(Record(student_id, GRADER_PROBLEM, "", zeros, note))


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
