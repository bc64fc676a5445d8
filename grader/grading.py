"""Grade one submission: a notebook in, one record (and its feedback file) out.

The notebook runs in a sandboxed kernel through nbgrader's autograde, with nbgrader's own
pipeline plus two preprocessors of ours::

    GradingExecute -> IgnorePattern -> CleanKernelCheck -> ... -> SaveAutoGrades

``GradingExecute`` runs the notebook and accepts what its test cells hand in;
``CleanKernelCheck`` runs the hidden tests again in a clean kernel on those objects and adds
its verdict to each test cell, so that nbgrader's gradebook scores each test at the lower of
the two runs. Then nbgrader writes the feedback and the outcome becomes a :class:`Record`.
A failure is the grader's only when a kernel did not start or did not prove, before any
student code ran, that it has what the grader gives it (:func:`_not_ready`, grader.checker);
everything after that is the student's. Every submission gets a course folder of its own (a copy of the run's template), so
submissions are graded independently of each other, in any process: :func:`grade_notebook`
is the task a worker runs (grader/workers.py), and it returns the record and the files to
write instead of writing them; the coordinator (grader/run.py) alone writes OUT.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)
from traitlets.config import Config

from .checker import CheckingKernel, CleanKernelCheck, warm_up_code
from .collect import Submission
from .config import COURSE_ID, course_config
from .kernel_data import KernelData, prepare_kernel_data
from .master import Master, hook, load_master
from .preprocessors import GradingExecute
from .records import GRADED, GRADER_PROBLEM, NOT_GRADED, Record, submission_digest
from .sandbox import SandboxLimits, environment, mount_tmpfs, prepare_sandbox, umount

# Set on Ctrl-C or SIGTERM: the submission being graded gets no record (nbgrader may swallow
# the KeyboardInterrupt itself), and the next run grades it again.
STOP = threading.Event()
HANDIN_TMPFS = "size=256m,nr_inodes=1000,mode=0755"
CHECK_CELL_TIMEOUT = 900  # s per cell of the clean kernel, at least
CHECK_STARTUP_TIMEOUT = 600  # s for the clean kernel to answer (its preload included)
CHECK_NOTEBOOK_TIMEOUT = 3600  # s the clean kernel may live after the student's time limit


@dataclass(frozen=True)
class GradingContext:
    """What grading any submission of a run needs, prepared once (see :func:`prepare`)."""

    out: Path
    scratch: Path  # short (Unix socket paths): each submission's work folder goes here
    template: Path  # an nbgrader course folder with the assignment generated
    master: Master  # the lab graded
    data: KernelData
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    sandboxed: bool = True
    hide: tuple[Path, ...] = ()  # more paths no kernel may see (the submissions folder)
    threads: int | None = None  # TensorFlow's threads per kernel; None: its default (all cores)

    def close(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)


@dataclass(frozen=True)
class GradingSettings:
    """What a worker needs to prepare its own :class:`GradingContext` (picklable: sent with
    every task, prepared once per process)."""

    out: Path  # the coordinator's OUT, hidden from kernels (where it exists)
    lab: Path  # the lab graded: its folder (grader/source/<lab>/)
    holdout: Path | None  # None: the course's default, found by the worker
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    sandboxed: bool = True
    hide: tuple[Path, ...] = ()
    threads: int | None = None


@dataclass
class Graded:
    """One student graded: the record, and the files for OUT (path relative to OUT -> bytes:
    autograded/, feedback/, logs/), which the coordinator writes before the record."""

    record: Record
    files: dict[str, bytes] = field(default_factory=dict)


def prepare(
    out: Path,
    lab: Path,
    holdout: Path | None,
    limits: SandboxLimits | None = None,
    sandboxed: bool = True,
    hide: tuple[Path, ...] = (),
    threads: int | None = None,
) -> GradingContext:
    """Gather the kernels' data and generate the assignment of the lab in folder ``lab``
    once for a run into ``out``."""
    from nbgrader.apps import NbGraderAPI

    scratch = Path(tempfile.mkdtemp(prefix="tlgrade-"))
    try:
        master = load_master(lab)
        data = prepare_kernel_data(scratch, master, holdout)
        template = scratch / "template"
        source = template / "source" / master.lab / master.path.name
        source.parent.mkdir(parents=True)
        shutil.copyfile(master.path, source)
        result = NbGraderAPI(config=course_config(template, master)).generate_assignment(master.lab)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('log')}")
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    hidden = (Path(out).resolve(), *(Path(p).resolve() for p in hide))
    return GradingContext(
        Path(out).resolve(),
        scratch,
        template,
        master,
        data,
        limits or SandboxLimits(),
        sandboxed,
        hidden,
        threads,
    )


_prepared: dict[GradingSettings, GradingContext] = {}
_one_at_a_time = threading.Lock()  # a sandbox sets JUPYTER_PATH for the whole process


def prepared(settings: GradingSettings) -> GradingContext:
    """This process's context for ``settings``, prepared on first use, removed at exit."""
    from sqlalchemy.exc import SAWarning

    # nbgrader's gradebook triggers harmless SQLAlchemy session warnings on every student.
    warnings.filterwarnings("ignore", category=SAWarning)
    with _one_at_a_time:
        if settings not in _prepared:
            held_out, spec = settings.holdout, load_master(settings.lab).spec
            if held_out is None and spec.holdout:
                held_out = hook(spec.holdout)()
            context = prepare(
                settings.out,
                settings.lab,
                held_out,
                settings.limits,
                settings.sandboxed,
                settings.hide,
                settings.threads,
            )
            atexit.register(context.close)
            _prepared[settings] = context
        return _prepared[settings]


def release_prepared() -> None:
    """Remove the contexts this process prepared (the end of a run in the coordinator)."""
    with _one_at_a_time:
        while _prepared:
            context = _prepared.popitem()[1]
            context.close()
            atexit.unregister(context.close)


def grade_notebook(student_id: str, notebook: bytes, settings: GradingSettings) -> Graded:
    """The task a worker runs: grade one student's notebook (its bytes, so that a worker on
    another machine needs no access to the submissions)."""
    context = prepared(settings)
    with tempfile.TemporaryDirectory(prefix="sub", dir=context.scratch) as folder:
        path = Path(folder) / f"{student_id}.ipynb"
        path.write_bytes(notebook)
        with _one_at_a_time:
            return grade_submission(Submission(student_id, path), context)


def not_graded(sub: Submission, master: Master) -> Record:
    """The record of a submission that cannot be graded as ``master``'s lab (``sub.problem``)."""
    zeros = {part: 0.0 for part in master.parts}
    return Record(
        sub.student_id, NOT_GRADED, submission_digest(master.digest, sub.path), zeros, sub.problem
    )


def grade_submission(sub: Submission, context: GradingContext) -> Graded:
    """Grade ``sub``; never raises for anything in the submission (KeyboardInterrupt on STOP)."""
    started = time.monotonic()
    master = context.master
    digest = submission_digest(master.digest, sub.path)
    work = Path(tempfile.mkdtemp(prefix="s", dir=context.scratch))
    try:
        graded = _grade(sub, context, master, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    graded.record.digest = digest
    graded.record.seconds = time.monotonic() - started
    return graded


def _grade(sub: Submission, context: GradingContext, master: Master, work: Path) -> Graded:
    phases: dict[str, float] = {}
    clock = time.monotonic()
    course = work / "course"
    shutil.copytree(context.template, course)
    target = course / "submitted" / sub.student_id / master.lab / master.path.name
    target.parent.mkdir(parents=True)
    nb = nbformat.read(sub.path, as_version=4)
    repairs = repair_notebook(nb, master.notebook)
    nbformat.write(nb, target)
    handin, accepted = work / "handin" / "box", work / "handin" / "accepted"
    with _handin_folder(work / "handin", mounted=context.sandboxed and os.geteuid() == 0):
        config, checking, notebook, activated = _kernels(context, course, work, handin, accepted)
        execute = GradingExecute(
            config=config,
            handin=handin,
            accepted=accepted,
            on_start=checking.start if checking else None,
            on_handin=checking.load_soon if checking else None,
            readiness=notebook.readiness if notebook else None,
        )
        check = CleanKernelCheck(checking, accepted, master, config=config)
        pipeline = [
            execute,
            IgnorePattern,
            *([check] if checking else []),
            ClearMetadataPreprocessor,
            LimitOutput,
            SaveAutoGrades,
            AssignLatePenalties,
            CheckCellMetadata,
        ]
        phases["prepare"] = time.monotonic() - clock
        clock = time.monotonic()
        try:
            with activated:
                outcome = _run_nbgrader(
                    "Autograde",
                    config,
                    sub.student_id,
                    master.lab,
                    autograde_preprocessors=pipeline,
                )
        finally:
            if checking:
                checking.stop()
    if STOP.is_set():
        raise KeyboardInterrupt
    phases.update(execute.seconds)
    phases["clean check"] = check.seconds
    phases["nbgrader"] = time.monotonic() - clock - sum(execute.seconds.values()) - check.seconds
    zeros = {part: 0.0 for part in master.parts}
    unready = _not_ready(execute)
    if unready or not outcome["success"]:
        error = _last_error(outcome) if not outcome["success"] else ""
        died = error.startswith("the kernel died")
        status = GRADED if died and not unready else GRADER_PROBLEM
        if status == GRADER_PROBLEM:
            error = _grader_problem(unready or f"nbgrader's autograde failed: {error}")
        record = Record(
            sub.student_id, status, "", zeros, "; ".join([*repairs, error]), phases=phases
        )
        return Graded(record, _log_file(sub.student_id, outcome))

    autograded = course / "autograded" / sub.student_id / master.lab / master.path.name
    scores, cell_scores, unscored = _gradebook_scores(config, sub.student_id, master)
    notes = [*repairs]
    if unscored:
        notes.append(f"not scored automatically: {', '.join(unscored)}")
    lowered = [
        f"{grade_id} {kernel:g}->{check.clean_scores[grade_id]:g}"
        for grade_id, kernel in check.kernel_scores.items()
        if grade_id in check.clean_scores
        and check.clean_scores[grade_id] < kernel
        and grade_id not in master.spec.measured
    ]
    if lowered:
        notes.append(f"lowered by the clean-kernel check: {', '.join(lowered)}")
    if check.stopped:
        notes.append(check.stopped)
    problem = _grader_problem(check.problem) if check.problem else ""
    record = Record(
        sub.student_id,
        GRADER_PROBLEM if problem else GRADED,
        "",
        scores,
        "; ".join([*notes, problem] if problem else notes),
        notebook_scores=_by_part(check.kernel_scores, master),
        clean_scores=_by_part(check.clean_scores, master),
        phases=phases,
        cell_scores=cell_scores,
    )
    graded = Graded(record, {f"autograded/{sub.student_id}.ipynb": autograded.read_bytes()})
    if problem:  # the student's feedback would blame them for the grader's failure
        return graded
    clock = time.monotonic()
    result = _run_nbgrader("GenerateFeedback", config, sub.student_id, master.lab)
    html = course / "feedback" / sub.student_id / master.lab / f"{master.path.stem}.html"
    if result["success"] and html.exists():
        record.feedback = f"feedback/{sub.student_id}.html"
        graded.files[record.feedback] = html.read_bytes()
    else:
        graded.files.update(_log_file(sub.student_id, result))
        record.note = "; ".join(
            filter(None, [record.note, "no feedback: nbgrader could not write it (see logs/)"])
        )
    phases["feedback"] = time.monotonic() - clock
    return graded


def _kernels(context: GradingContext, course: Path, work: Path, handin: Path, accepted: Path):
    """nbgrader's config for the student's kernel, the clean checking kernel (None when the
    lab has none), the student's kernel's sandbox (None without it: a plain local kernel)
    and the context in which the student's kernel must be started."""
    config = course_config(course, context.master)
    config.Execute.timeout = context.limits.cell_timeout
    check_config = Config()
    data, spec = context.data, context.master.spec
    threads = thread_environment(context.threads)
    if not context.sandboxed:
        check_config.NotebookClient.kernel_name = "python3"
        notebook_env = {**data.notebook_environment(), **threads, "COURSE_HANDIN_DIR": str(handin)}
        checking = CheckingKernel(
            _check_timeout(check_config, context.limits),
            work / "check",
            accepted,
            env={**os.environ, **data.check_environment(), **threads},
        )
        return config, checking if spec.clean_kernel else None, None, environment(notebook_env)
    hidden = [*context.hide, context.scratch]
    notebook = prepare_sandbox(
        work / "n",
        context.limits,
        hide=[*hidden, *filter(None, [data.holdout, data.check_cache])],
        readonly=data.readonly(),
        overlay=list(filter(None, [data.notebook_cache])),
        handin=handin,
        environment={**data.notebook_environment(), **threads},
        preload=data.notebook_ready_check(),
    )
    config.merge(notebook.config)
    if not spec.clean_kernel:
        return config, None, notebook, notebook.activated()
    # The clean kernel starts with the student's and waits for it: its own time limit.
    clean_limits = replace(
        context.limits,
        notebook_timeout=(context.limits.notebook_timeout or 0) + CHECK_NOTEBOOK_TIMEOUT,
    )
    clean = prepare_sandbox(
        work / "c",
        clean_limits,
        hide=hidden,
        readonly=[*data.readonly(), *filter(None, [data.holdout]), accepted],
        overlay=list(filter(None, [data.check_cache])),
        kernel_name="tlcourse-checker",
        environment={**data.check_environment(), **threads},
        preload="\n".join([data.check_ready_check(), warm_up_code(context.master)]),
    )
    check_config.merge(clean.config)
    checking = CheckingKernel(
        _check_timeout(check_config, context.limits),
        work / "check",
        accepted,
        sandbox=clean,
    )
    return config, checking, notebook, notebook.activated()


def _check_timeout(check_config: Config, limits: SandboxLimits) -> Config:
    """The clean kernel runs the grader's code, not the student's: a full pass over the
    held-out photos (slow when other students are graded at the same time) must not hit a
    cell limit chosen for student cells."""
    check_config.NotebookClient.timeout = max(limits.cell_timeout, CHECK_CELL_TIMEOUT)
    check_config.NotebookClient.startup_timeout = CHECK_STARTUP_TIMEOUT
    return check_config


def thread_environment(threads: int | None) -> dict[str, str]:
    """The variables that size TensorFlow's (and oneDNN's) thread pools in a kernel."""
    if threads is None:
        return {}
    names = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
    return {name: str(threads) for name in names}


@contextlib.contextmanager
def _handin_folder(folder: Path, mounted: bool):
    """``folder/box``, where the kernel hands in, and ``folder/accepted``, on one file system
    (a small tmpfs when ``mounted``: a submission cannot fill the disk through it)."""
    folder.mkdir()
    if mounted:
        mount_tmpfs(folder, HANDIN_TMPFS)
    try:
        (folder / "box").mkdir(mode=0o1777)
        (folder / "box").chmod(0o1777)  # the sandbox uid writes here
        (folder / "accepted").mkdir()
        yield folder
    finally:
        if mounted:
            umount(folder)


def _run_nbgrader(converter: str, config: Config, student_id: str, lab: str, **traits) -> dict:
    """Run one of nbgrader's converters for ``student_id``'s ``lab``; ``{"success", "log",
    "error"}``."""
    import nbgrader.converters
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id, coursedir.student_id = lab, student_id
    app = getattr(nbgrader.converters, converter)(coursedir=coursedir, config=config)
    app.force = True
    for name, value in traits.items():
        setattr(app, name, value)
    return capture_log(app)


def _gradebook_scores(
    config: Config, student_id: str, master: Master
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Per part and per test cell, the points in nbgrader's gradebook; and the test cells it
    could not score."""
    from nbgrader.api import Gradebook

    scores = {part: 0.0 for part in master.parts}
    cells: dict[str, float] = {}
    unscored = []
    with Gradebook(config.CourseDirectory.db_url, COURSE_ID) as gb:
        notebook = gb.find_submission_notebook(master.path.stem, master.lab, student_id)
        parts = {test.grade_id: test.part for test in master.tests}
        for grade in notebook.grades:
            if grade.name not in parts:
                continue
            if grade.score is None:
                unscored.append(grade.name)
            else:
                cells[grade.name] = float(grade.score)
                scores[parts[grade.name]] += float(grade.score)
    return scores, cells, unscored


def _by_part(by_cell: dict[str, float], master: Master) -> dict[str, float]:
    if not by_cell:
        return {}
    scores = {part: 0.0 for part in master.parts}
    for test in master.tests:
        scores[test.part] += by_cell.get(test.grade_id, 0.0)
    return scores


def _not_ready(execute: GradingExecute) -> str:
    """Why the student's kernel never had what the grader gives it, or "".

    The rule: a failure is the grader's when the student's kernel did not start, or did not
    prove (its readiness report, sent before any student code runs, through a pipe student
    code cannot write) that it has the files it is given; or when the clean kernel did not
    start or prove the same (grader.checker). Everything after that is the student's.
    """
    if not execute.served:
        return "the student's kernel did not start (see logs/)"
    return execute.not_ready


def _grader_problem(what: str) -> str:
    return (
        f"GRADER PROBLEM, not the student's: {what}. Nothing was recorded against the "
        "student and no feedback was written; fix the cause, then run the same command "
        "again to grade them"
    )


def _log_file(student_id: str, outcome: dict) -> dict[str, bytes]:
    """nbgrader's whole log of a failure, kept for the instructor in logs/."""
    text = f"{outcome.get('log') or ''}\n{outcome.get('error') or ''}"
    return {f"logs/{student_id}.txt": text.encode()}


def _last_error(outcome: dict) -> str:
    text = f"{outcome.get('log') or ''}\n{outcome.get('error') or ''}"
    if "DeadKernelError" in text or "Kernel died" in text:
        return "the kernel died (it exited, or was killed at the memory or notebook time limit)"
    lines = [
        line.strip()
        for line in text.splitlines()
        if re.search(r"\w+(Error|Exception)\b", line) and "see the the above traceback" not in line
    ]
    return (lines[-1][:300] if lines else "unknown error") + " (full log: logs/)"


def repair_notebook(nb, master) -> list[str]:
    """Make a submission safe for nbgrader, in place; return what was changed.

    Cells whose grade id is not the lab's, and second copies of a graded cell, become plain
    cells (they still run). A test cell that is missing (deleted, its metadata lost, its id
    edited) is put back after the cell it follows in the master; nbgrader then restores the
    source of every test cell, as it does for one edited to ``pass``. Tampering with test
    cells therefore changes nothing, for better or worse.
    """
    notes = []
    known = [c.metadata["nbgrader"]["grade_id"] for c in master.cells if "nbgrader" in c.metadata]
    seen: dict[str, object] = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id is None:
            cell.get("metadata", {}).pop("nbgrader", None)
        elif grade_id not in known or grade_id in seen:
            why = "is not a cell of the lab" if grade_id not in known else "appears twice"
            notes.append(f"cell {str(grade_id)[:40]!r} {why}: it ran as a plain cell")
            del cell.metadata["nbgrader"]
        else:
            seen[grade_id] = cell
    for index, source in enumerate(master.cells):
        meta = source.metadata.get("nbgrader", {})
        if not meta.get("grade") or meta["grade_id"] in seen:
            continue
        position = 0
        for earlier in reversed(master.cells[:index]):
            earlier_id = earlier.metadata.get("nbgrader", {}).get("grade_id")
            if earlier_id in seen:
                position = next(i for i, c in enumerate(nb.cells) if c is seen[earlier_id]) + 1
                break
        cell = nbformat.v4.new_code_cell("", metadata={"nbgrader": dict(meta)})
        nb.cells.insert(position, cell)
        seen[meta["grade_id"]] = cell
        notes.append(f"test cell {meta['grade_id']} was missing: put back and run")
    ids = set()
    for cell in nb.cells:  # nbformat 4.5 cell ids must be unique
        if "id" in cell and cell.id in ids:
            cell.id = f"{cell.id[:50]}-{len(ids)}"
        ids.add(cell.get("id"))
    return notes
