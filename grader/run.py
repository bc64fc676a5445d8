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
from dataclasses import asdict, replace
from pathlib import Path

from .collect import CollectError, Submission, check_lab, collect
from .config import import_tensorflow_quietly
from .gradebook import gradebook_path, update_gradebook
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
from .master import Master, find_labs, hook, load_master
from .records import (
    GRADER_PROBLEM,
    Record,
    out_lock,
    read_records,
    submission_digest,
    write_record,
)
from .report import write_reports
from .sandbox import GiB, SandboxLimits, SandboxUnavailable, bubblewrap, unenforced_limits
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
    lab: str | None = None,
    source: Path | None = None,
    lms: str | None = None,
    **options,
) -> list[Record]:
    """A folder, nbgrader's layout or an LMS ZIP in; per lab, records and reports out
    (``OUT/<lab>/``: grades.csv, lms_grades.csv, the LMS's file). ``lab`` says which lab
    every notebook is, else each one's own cells tell; ``source`` adds another nbgrader
    course's assignments to the labs of grader/source/ (an nbgrader course folder's own
    ``source/`` is added); ``lms`` says which LMS the grades go to, else the ZIP's names."""
    submissions = Path(submissions)
    if source is None and (submissions / "source").is_dir():
        source = submissions / "source"
    labs = find_labs(source)
    if lab is not None and lab not in labs:
        raise CollectError(f"there is no lab {lab!r}: the labs are {', '.join(labs)}")
    roster = read_roster(roster_csv) if roster_csv else None
    into = Path(out) / "zip_submissions"
    subs = collect(submissions, into, roster, name_regexp, log, labs, lab, lms)
    if submissions.suffix.lower() != ".zip":
        options["hide"] = (*options.get("hide", ()), submissions)
    return grade_class(subs, out, holdout, roster, log=log, labs=labs, **options)


@_holding_out
def grade_class(
    subs: list[Submission],
    out: Path,
    holdout: Path | None = None,
    roster: Roster | None = None,
    log=print,
    labs: dict[str, Path] | None = None,
    limits: SandboxLimits | dict | None = None,
    **options,
) -> list[Record]:
    """Grade ``subs`` into ``out``, each lab into ``out/<lab>/``, one lab after the other
    (see :func:`grade_lab`); a submission of no known lab is reported with the lab most of
    the others are (with the one lab ``out`` holds, when none is of a known lab).
    ``limits``: the sandbox's, or a dict of those that replace the lab's."""
    labs = labs or find_labs()
    by_lab: dict[str, list[Submission]] = {}
    for sub in subs:
        by_lab.setdefault(sub.lab, []).append(sub)
    unknown = by_lab.pop(None, [])
    graded_before = [lab for lab in labs if (Path(out) / lab / "records").is_dir()]
    if unknown and not by_lab and len(graded_before) == 1:  # files handed in again into OUT
        by_lab[graded_before[0]] = []
    if unknown and not by_lab:
        raise CollectError(
            f"none of the {len(unknown)} submission(s) is a notebook of a known lab "
            f"({', '.join(labs)}): say which lab they are with --lab"
        )
    if unknown:
        usual = max(by_lab, key=lambda lab: len(by_lab[lab]))
        by_lab[usual].extend(unknown)
    graded: list[Record] = []
    for lab in sorted(by_lab):
        master = load_master(labs[lab])
        lab_limits = limits if isinstance(limits, SandboxLimits) else spec_limits(master, limits)
        graded += grade_lab(
            by_lab[lab], out, master, holdout, roster, log=log, limits=lab_limits, **options
        )
    return graded


def spec_limits(master: Master, chosen: dict | None = None) -> SandboxLimits:
    """The sandbox limits of ``master``'s lab: its spec's, replaced by those ``chosen``."""
    spec = dict(master.spec.limits)
    if "memory_gib" in spec:
        spec["memory"] = int(spec.pop("memory_gib") * GiB)
    return replace(SandboxLimits(**spec), **(chosen or {}))


def grade_lab(
    subs: list[Submission],
    out: Path,
    master: Master,
    holdout: Path | None = None,
    roster: Roster | None = None,
    log=print,
    limits: SandboxLimits | None = None,
    sandboxed: bool = True,
    hide: tuple[Path, ...] = (),
    regrade: bool = False,
    jobs: int | None = 1,
    scheduler: str | None = None,
    assignment: str | None = None,
) -> list[Record]:
    """Grade ``subs``, all of ``master``'s lab, into ``out/<lab>/`` (``jobs`` at a time
    here, None: as many as pays, see :func:`grader.workers.default_jobs`; or on the Dask
    cluster at ``scheduler``); return the records written by this run. ``assignment``: the
    lab's column in the LMS (grader/report.py)."""
    import tlcourse

    root = Path(out).resolve()
    out = root / master.lab
    (out / "records").mkdir(parents=True, exist_ok=True)
    records = read_records(out, log)  # a damaged record is moved aside: graded again
    said: list[str] = []

    def report(changed: list[Record]) -> Path:
        """The reports from every record; ``changed`` into the gradebook too."""
        path = write_reports(out, records, master, roster, assignment)
        why = update_gradebook(out, changed, master)
        if why and not said:  # once a run
            said.append(why)
            log(
                f"The gradebook {gradebook_path(master)} could not be written ({why}); grades.csv "
                "and the feedback are complete. Set COURSE_GRADEBOOK to a gradebook you can "
                "write and run the same command again to fill it."
            )
        return path

    if holdout and master.spec.holdout:  # checked before anyone is graded
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
        f"Grading {len(subs)} submission(s) of {master.lab} into {out}, {where} "
        f"({_how(sandboxed, scheduler)})"
    )
    progress = Progress(len(subs), log)
    graded: list[Record] = []
    tasks = []
    for sub in subs:
        kept = records.get(sub.student_id)
        if not regrade and _kept(kept, sub, master.digest):
            if kept.identity != asdict(sub.identity):  # the same file, handed in anew
                kept.identity = asdict(sub.identity)
                write_record(out, kept)
            progress.line(sub.student_id, "already graded, kept (--regrade grades it again)")
        elif sub.problem or sub.lab != master.lab:
            if not sub.problem:
                sub.problem = check_lab(sub, master.lab)
            record = not_graded(sub, master)
            _save(out, Graded(record), records, graded, report, sub)
            progress.line(sub.student_id, _outcome(record))
        else:
            tasks.append(sub)
    spec = master.spec
    if tasks and (spec.given or spec.prepare or spec.holdout):  # hooks to run here: they may
        import_tensorflow_quietly()  # import TensorFlow, whose start-up lines must stay out
    STOP.clear()
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if tasks and not scheduler and master.spec.holdout:  # a cluster's workers find their own
            holdout = holdout or hook(master.spec.holdout)()
        settings = GradingSettings(
            root,
            master.path.parent,
            holdout if master.spec.holdout else None,
            limits,
            sandboxed,
            tuple(hide),
            None if scheduler else threads_per_kernel(jobs),  # on a worker: all its cores
        )
        if tasks and not scheduler:  # the data checked and the caches filled once, here
            held_out = f" (held-out photos: {holdout})" if master.spec.holdout else ""
            log(f"Preparing what the kernels are given{held_out} ...")
            prepared(settings)
        by_id = {sub.student_id: sub for sub in tasks}
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
                    result = _grader_failure(task.key, result, master)
                _save(out, result, records, graded, report, by_id[task.key])
                progress.line(task.key, _outcome(result.record), finished=True)
                if STOP.is_set():  # a stop that a library caught as it wrote the reports
                    raise KeyboardInterrupt
        # The reports again; into the gradebook, the students kept from earlier runs.
        written = {record.student_id for record in graded}
        path = report([r for r in records.values() if r.student_id not in written])
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


def _save(out: Path, result: Graded, records, graded, report, sub: Submission) -> None:
    """Write one student's files, then their record (last: a record means all is there),
    then the reports."""
    record = result.record
    record.identity = asdict(sub.identity)
    _forget(out, record.student_id)
    for name, data in result.files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    write_record(out, record)
    records[record.student_id] = record
    graded.append(record)
    report([record])


def _grader_failure(student_id: str, error: Exception, master: Master) -> Graded:
    """The record of a grading that raised: the grader's problem, graded again next run."""
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
