"""Grade a class: student notebooks in, ``grades.csv`` and HTML feedback out.

Each run keeps its state in OUT: an nbgrader course folder (``OUT/nbgrader``, with the
gradebook), the feature cache and the Keras cache shared by all students. Grading again
replaces the regraded students' rows and keeps everyone else's.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat
from traitlets.config import Config

from .checker import run_check
from .config import ASSIGNMENT, MASTER, MEASURED_IN_CLEAN_KERNEL, course_config
from .kernel_launcher import MS_NODEV, MS_NOSUID, mount
from .sandbox import SandboxLimits, environment, prepare_sandbox

STUDENT_ID = re.compile(r"^[A-Za-z0-9_.@-]+$")
HANDIN_FILE = re.compile(r"^[a-z][a-z0-9_]{0,40}\.(keras|json)$")  # as tlcourse.handin
HANDIN_TMPFS = "size=256m,nr_inodes=1000,mode=1777"


@dataclass
class Submission:
    student_id: str
    path: Path
    problem: str = ""  # why it cannot be graded; empty when it can


@dataclass
class Result:
    student_id: str
    scores: dict[str, float]
    note: str = ""
    feedback: Path | None = None
    seconds: float = 0.0


def master_parts(master: Path = MASTER) -> dict[str, dict[str, float]]:
    """``{part: {grade cell id: points}}`` read from the master notebook."""
    parts: dict[str, dict[str, float]] = {}
    for cell in nbformat.read(master, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            part = "_".join(meta["grade_id"].split("_")[:2])  # part_a_tests -> part_a
            parts.setdefault(part, {})[meta["grade_id"]] = float(meta["points"])
    return parts


def find_submissions(folder: Path) -> list[Submission]:
    """Student notebooks in ``folder``: ``<id>.ipynb`` files or ``submitted/<id>/cats_vs_dogs/``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SystemExit(f"grader: {folder} is not a folder of submissions")
    found: dict[str, Submission] = {}
    nested = folder / "submitted" if (folder / "submitted").is_dir() else folder
    for student_dir in sorted(p for p in nested.iterdir() if p.is_dir()):
        notebooks = sorted((student_dir / ASSIGNMENT).glob("*.ipynb"))
        if notebooks:
            found[student_dir.name] = Submission(student_dir.name, notebooks[0])
        elif (student_dir / ASSIGNMENT).is_dir():
            found[student_dir.name] = Submission(
                student_dir.name,
                student_dir / ASSIGNMENT,
                "no .ipynb file in the submission folder",
            )
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            found[path.stem] = Submission(path.stem, path)  # essay.docx -> student "essay"
    for sub in found.values():
        if not sub.problem:
            sub.problem = check_notebook(sub)
    return sorted(found.values(), key=lambda s: s.student_id)


def check_notebook(sub: Submission) -> str:
    """Why ``sub`` cannot be graded as this assignment, or "" when it can."""
    if not STUDENT_ID.match(sub.student_id):
        return "the file name is not a usable student id (letters, digits, . _ - @ only)"
    if sub.path.suffix != ".ipynb":
        return f"{sub.path.name} is not a notebook (.ipynb)"
    try:
        text = sub.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return f"the file cannot be read as text ({error})"
    if not text.strip():
        return "the notebook file is empty"
    try:
        nb = nbformat.reads(text, as_version=4)
    except (
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        nbformat.ValidationError,
    ) as error:  # not JSON, or not a notebook (e.g. "{}")
        return f"the file is not a valid notebook (not JSON in notebook format: {str(error)[:120]})"
    master = nbformat.read(MASTER, as_version=4)
    ours = {c.metadata["nbgrader"]["grade_id"] for c in master.cells if "nbgrader" in c.metadata}
    theirs = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells}
    title = master.cells[0].source.splitlines()[0]
    if not ours & theirs and not any(title in c.source for c in nb.cells):
        return f"this notebook is not the {ASSIGNMENT} lab (none of its cells belongs to it)"
    return ""


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


class ClassGrader:
    """Grades submissions into ``out`` with nbgrader, one student at a time.

    Each notebook runs in a sandboxed kernel (``grader/sandbox.py``); its hidden tests then
    run again in a clean sandboxed kernel on what they handed in (``grader/checker.py``),
    the only kernel that sees the held-out photos. A part scores the lower of the two.
    ``sandboxed=False`` runs both kernels as plain local kernels: for trusted notebooks only.
    """

    def __init__(
        self,
        out: Path,
        holdout: Path,
        on_write: Callable[[Path], object] | None = None,
        *,
        limits: SandboxLimits | None = None,
        sandboxed: bool = True,
        hide: list[Path] | tuple = (),
        regrade: bool = False,
    ):
        self.out = Path(out).resolve()
        self.on_write = on_write  # called with grades.csv after each rewrite
        self.course = self.out / "nbgrader"
        self.holdout = Path(holdout).resolve()
        self.limits = limits or SandboxLimits()
        self.sandboxed = sandboxed
        self.regrade = regrade
        self.stopping = False  # set by the signal handler of grade_class
        self.parts = master_parts()
        self.rejected_file = self.out / "rejected.json"
        self.record_file = self.out / "graded.json"  # student -> what was graded, and notes
        (self.out / "feedback").mkdir(parents=True, exist_ok=True)
        self._prepare_environment()
        self._prepare_course()
        warm_caches()
        self._prepare_kernels([self.out, *map(Path, hide)])

    def _prepare_environment(self) -> None:
        # The kernels inherit this environment (the sandbox passes COURSE_*, TF_*, KERAS_*).
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        os.environ.setdefault("COURSE_CACHE_DIR", str(self.out / "cache"))
        os.environ.setdefault("KERAS_HOME", str(self.out / "keras"))
        os.environ.setdefault("MPLBACKEND", "Agg")
        for name in ("COURSE_HOLDOUT_DIR", "COURSE_HANDIN_DIR"):  # set per kernel below
            os.environ.pop(name, None)
        # Real paths: the sandbox shows folders at their real path (and /tmp is private, so
        # a symlink there would lead nowhere).
        for name in ("COURSE_OFFLINE_DIR", "COURSE_CACHE_DIR", "KERAS_HOME"):
            if os.environ.get(name):
                os.environ[name] = str(Path(os.environ[name]).expanduser().resolve())

    def _prepare_course(self) -> None:
        from nbgrader.apps import NbGraderAPI

        source = self.course / "source" / ASSIGNMENT / MASTER.name
        changed = not source.exists() or source.read_bytes() != MASTER.read_bytes()
        source.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MASTER, source)
        self.api = NbGraderAPI(config=course_config(self.course))
        if changed or not (self.course / "release" / ASSIGNMENT).is_dir():
            result = self.api.generate_assignment(ASSIGNMENT)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('log')}")

    def _prepare_kernels(self, hide: list[Path]) -> None:
        """The student's kernel and the clean checking kernel, with their environments."""
        self.folder = Path(tempfile.mkdtemp(prefix="tlgrade-"))
        self.handin = self.folder / "handin"
        self.handin.mkdir()
        self.handin_mounted = False
        config = course_config(self.course)
        checker = Config()
        checker.NotebookClient.timeout = self.limits.cell_timeout
        config.Execute.timeout = self.limits.cell_timeout
        self.student_env = {"COURSE_HANDIN_DIR": None if self.sandboxed else str(self.handin)}
        self.checker_env = {"COURSE_HOLDOUT_DIR": str(self.holdout)}
        self.boxes = []
        if self.sandboxed:
            student = prepare_sandbox(
                self.folder / "s",
                self.limits,
                hide=[*hide, self.folder, self.holdout],
                handin=self.handin,
            )
            clean = prepare_sandbox(
                self.folder / "c",
                self.limits,
                hide=[*hide, self.folder],
                readonly=[self.holdout, self.handin],
                kernel_name="tlcourse-checker",
                environment={"COURSE_HOLDOUT_DIR": str(self.holdout)},
            )
            # The hand-in folder is a small tmpfs: a submission cannot fill the disk through it.
            mount("tmpfs", str(self.handin), "tmpfs", MS_NOSUID | MS_NODEV, HANDIN_TMPFS)
            self.handin_mounted = True
            config.merge(student.config)
            checker.merge(clean.config)
            self.student_env.update(student.environ)
            self.checker_env.update(clean.environ)
            self.boxes = [student, clean]
        else:
            checker.NotebookClient.kernel_name = "python3"
        self.api.config = config
        self.checker_config = checker

    def close(self) -> None:
        """Remove the kernels' temporary folders."""
        for box in self.boxes:
            box.cleanup()
        if self.handin_mounted:
            umount(self.handin)
        shutil.rmtree(self.folder, ignore_errors=True)

    def digest(self, sub: Submission) -> str:
        """What was graded: the submission's bytes and the master's."""
        data = sub.path.read_bytes() if sub.path.is_file() else b""
        return hashlib.sha256(MASTER.read_bytes() + b"\0" + data).hexdigest()

    def already_graded(self, sub: Submission) -> bool:
        """True when this very submission was graded into ``out`` before (and not --regrade)."""
        done = _read_json(self.record_file).get(sub.student_id) or {}
        return not self.regrade and done.get("digest") == self.digest(sub)

    def grade(self, sub: Submission) -> Result:
        """Autograde one submission and write its feedback; never raises for bad input."""
        started = time.monotonic()
        self._forget(sub.student_id)
        if sub.problem:
            self._reject(sub.student_id, sub.problem)
            self._record(sub)
            return Result(sub.student_id, self._zeros(), sub.problem)
        target = self.course / "submitted" / sub.student_id / ASSIGNMENT / MASTER.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = nbformat.read(sub.path, as_version=4)
        repairs = repair_notebook(nb, nbformat.read(MASTER, as_version=4))
        nbformat.write(nb, target)
        _empty(self.handin)
        with environment(self.student_env):
            outcome = self.api.autograde(ASSIGNMENT, sub.student_id)
        if self.stopping:
            raise KeyboardInterrupt
        _keep_handed_in_files(self.handin)
        if not outcome["success"]:
            self._save_log(sub.student_id, outcome)
            reason = "; ".join([*repairs, "grading failed: " + _last_error(outcome)])
            self._reject(sub.student_id, reason)
            self._record(sub)
            return Result(sub.student_id, self._zeros(), reason, None, time.monotonic() - started)
        check_note = self._check(sub.student_id)
        if self.stopping:
            raise KeyboardInterrupt
        scores, note = self._scores(sub.student_id)
        feedback = self._feedback(sub.student_id)
        if self.stopping:
            raise KeyboardInterrupt
        missing = "" if feedback else "no feedback: nbgrader could not write it (see logs/)"
        self._record(sub, "; ".join([*repairs, check_note, missing]))
        note = "; ".join(filter(None, [*repairs, note, check_note, missing]))
        return Result(sub.student_id, scores, note, feedback, time.monotonic() - started)

    def _check(self, student_id: str) -> str:
        """Run the clean-kernel check; lower the gradebook's scores to it; return a note."""
        from nbgrader.api import Gradebook

        with Gradebook(self.api.coursedir.db_url, self.api.coursedir.course_id) as gb:
            notebook = gb.find_submission_notebook(MASTER.stem, ASSIGNMENT, student_id)
            if not any(grade.auto_score for grade in notebook.grades):
                return ""  # nothing to confirm
        with environment(self.checker_env):
            check = run_check(self.handin, self.checker_config, self.folder / "work")
        lowered = []
        with Gradebook(self.api.coursedir.db_url, self.api.coursedir.course_id) as gb:
            notebook = gb.find_submission_notebook(MASTER.stem, ASSIGNMENT, student_id)
            for grade in notebook.grades:
                if grade.name not in check.scores or grade.score is None:
                    continue
                clean = check.scores[grade.name]
                if clean < grade.score:
                    if grade.name not in MEASURED_IN_CLEAN_KERNEL:
                        lowered.append(f"{grade.name} {grade.score:g}->{clean:g}")
                    grade.manual_score = clean
            gb.db.commit()
        self._annotate(student_id, check)
        if check.problem:
            return f"the clean-kernel check failed ({check.problem}): its parts score 0"
        return f"lowered by the clean-kernel check: {', '.join(lowered)}" if lowered else ""

    def _annotate(self, student_id: str, check) -> None:
        """Add the clean kernel's messages under each test cell of the autograded notebook."""
        path = self.course / "autograded" / student_id / ASSIGNMENT / MASTER.name
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.cell_type != "code" or grade_id not in check.scores:
                continue
            message = check.messages.get(grade_id) or check.problem or "passed"
            cell.outputs.append(
                nbformat.v4.new_output(
                    "stream",
                    name="stdout",
                    text=f"\n[checked again by the grader in a clean kernel: "
                    f"{check.scores[grade_id]:g} points]\n{message}\n",
                )
            )
        nbformat.write(nb, path)

    def _save_log(self, student_id: str, outcome: dict) -> None:
        """Keep nbgrader's whole log of a failed autograde for the instructor."""
        logs = self.out / "logs"
        logs.mkdir(exist_ok=True)
        text = f"{outcome.get('log') or ''}\n{outcome.get('error') or ''}"
        (logs / f"{student_id}.txt").write_text(text)

    def _record(self, sub: Submission, note: str = "") -> None:
        """Mark ``sub`` as graded, with the grader's notes on it (repairs, the check)."""
        record = _read_json(self.record_file)
        record[sub.student_id] = {"digest": self.digest(sub), "note": note.strip("; ")}
        _write_atomic(self.record_file, json.dumps(record, indent=1, sort_keys=True))

    def _zeros(self) -> dict[str, float]:
        return {part: 0.0 for part in self.parts}

    def _scores(self, student_id: str) -> tuple[dict[str, float], str]:
        from nbgrader.api import Gradebook

        scores = self._zeros()
        unscored = []
        with Gradebook(self.api.coursedir.db_url, self.api.coursedir.course_id) as gb:
            notebook = gb.find_submission_notebook(MASTER.stem, ASSIGNMENT, student_id)
            for grade in notebook.grades:
                part = "_".join(grade.name.split("_")[:2])
                if part not in scores:
                    continue
                if grade.score is None:
                    unscored.append(grade.name)
                else:
                    scores[part] += float(grade.score)
        note = f"not scored automatically: {', '.join(unscored)}" if unscored else ""
        return scores, note

    def _feedback(self, student_id: str) -> Path | None:
        result = self.api.generate_feedback(ASSIGNMENT, student_id)
        html = self.course / "feedback" / student_id / ASSIGNMENT / f"{MASTER.stem}.html"
        if not result["success"] or not html.exists():
            self._save_log(student_id, result)
            return None
        target = self.out / "feedback" / f"{student_id}.html"
        shutil.copyfile(html, target)
        return target

    def _rejected(self) -> dict[str, str]:
        return _read_json(self.rejected_file)

    def _reject(self, student_id: str, reason: str) -> None:
        rejected = self._rejected()
        rejected[student_id] = reason
        _write_atomic(self.rejected_file, json.dumps(rejected, indent=1, sort_keys=True))

    def _forget(self, student_id: str) -> None:
        """Remove a student's earlier result before grading them again."""
        from nbgrader.api import Gradebook, MissingEntry

        for path in (self.rejected_file, self.record_file):
            entries = _read_json(path)
            if entries.pop(student_id, None) is not None:
                _write_atomic(path, json.dumps(entries, indent=1, sort_keys=True))
        with Gradebook(self.api.coursedir.db_url, self.api.coursedir.course_id) as gb:
            try:
                gb.remove_submission(ASSIGNMENT, student_id)
            except MissingEntry:
                pass
        (self.out / "feedback" / f"{student_id}.html").unlink(missing_ok=True)

    def write_grades(self) -> Path:
        """Write ``grades.csv`` for every student graded into ``out`` so far."""
        from nbgrader.api import Gradebook, MissingEntry

        rows: dict[str, dict] = {}
        finished = _read_json(self.record_file)  # not a student interrupted half-way
        with Gradebook(self.api.coursedir.db_url, self.api.coursedir.course_id) as gb:
            students = [s.id for s in gb.students if s.id in finished]
        for student_id in students:
            try:
                scores, note = self._scores(student_id)
            except MissingEntry:  # a student without a graded submission (rejected)
                continue
            notes = [finished[student_id].get("note", ""), note]
            rows[student_id] = {**scores, "note": "; ".join(filter(None, notes))}
        for student_id, reason in self._rejected().items():
            rows[student_id] = {**self._zeros(), "note": reason}
        maximum = sum(sum(cells.values()) for cells in self.parts.values())
        header = ["student_id", *self.parts, "total", "max", "note"]
        lines = [header]
        for student_id in sorted(rows):
            row = rows[student_id]
            total = sum(row[part] for part in self.parts)
            lines.append(
                [
                    student_id,
                    *(_number(row[p]) for p in self.parts),
                    _number(total),
                    _number(maximum),
                    row["note"],
                ]
            )
        path = self.out / "grades.csv"
        partial = path.with_suffix(".csv.partial")
        with open(partial, "w", newline="") as handle:
            csv.writer(handle).writerows(lines)
        partial.replace(path)
        if self.on_write:
            self.on_write(path)
        return path


def _number(value: float) -> str:
    return f"{value:g}"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _empty(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _keep_handed_in_files(folder: Path) -> None:
    """Leave only regular files with hand-in names, readable by the checking kernel."""
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink() and HANDIN_FILE.match(path.name):
            path.chmod(0o644)
        elif path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def umount(path: Path) -> None:
    """Unmount ``path`` (lazily: nothing may still use it)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(str(path).encode(), 2)  # MNT_DETACH


def warm_caches() -> None:
    """Fill the Keras and feature caches before grading: the kernels see them read-only.

    The photos, the ImageNet weights and the features the lab's extractor computes for the
    training and validation photos (Part D), so no submission spends minutes on them.
    """
    import keras

    import tlcourse

    tlcourse.seed_keras_cache()
    base = keras.applications.MobileNetV2(
        input_shape=(224, 224, 3), include_top=False, weights="imagenet"
    )
    base.trainable = False
    inputs = keras.Input(shape=(224, 224, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(base(x, training=False))
    extractor = keras.Model(inputs, pooled)
    for split in ("train", "validation"):
        tlcourse.cached_features(extractor, split, verbose=False)


def _write_atomic(path: Path, text: str) -> None:
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text)
    partial.replace(path)


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


def grade_class(
    submissions: Path | list[Submission],
    out: Path,
    holdout: Path | None = None,
    log=print,
    on_write: Callable[[Path], object] | None = None,
    **options,
) -> list[Result]:
    """Grade every submission in ``submissions`` into ``out``; return the results.

    ``submissions`` is a folder or, from grader/lms.py, already collected submissions;
    ``on_write(grades_csv)`` runs after every rewrite of grades.csv (roster, LMS export).
    ``options`` go to :class:`ClassGrader` (limits, sandboxed, hide, regrade). A student
    whose submission was already graded into ``out`` is kept as is, so a run that was
    interrupted can simply be started again.
    """
    from sqlalchemy.exc import SAWarning

    import tlcourse

    # nbgrader's gradebook triggers harmless SQLAlchemy session warnings on every student.
    warnings.filterwarnings("ignore", category=SAWarning)
    holdout_dir = tlcourse.data.check_image_folder(holdout) if holdout else tlcourse.holdout_dir()
    subs = submissions if isinstance(submissions, list) else find_submissions(submissions)
    if not subs:
        raise SystemExit(f"grader: no submissions found in {submissions}")
    if not isinstance(submissions, list):
        options.setdefault("hide", [submissions])
    grader = ClassGrader(out, holdout_dir, on_write, **options)

    def stop(signum, frame):
        # Ctrl-C or SIGTERM (a job scheduler): the student being graded is not recorded
        # (nbgrader may swallow the KeyboardInterrupt, hence the flag); the next run
        # grades them again.
        grader.stopping = True
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    log(
        f"Grading {len(subs)} submission(s) of {ASSIGNMENT} into {grader.out} "
        f"(held-out photos: {holdout_dir}; "
        f"{'sandboxed kernels' if grader.sandboxed else 'NOT sandboxed: trusted notebooks only'})"
    )
    results = []
    try:
        for number, sub in enumerate(subs, 1):
            log(f"[{number}/{len(subs)}] {sub.student_id} ...", end=" ", flush=True)
            if grader.already_graded(sub):
                log("already graded, kept (--regrade grades it again)")
                continue
            result = grader.grade(sub)
            results.append(result)
            grader.write_grades()  # after every student: an interruption loses nothing graded
            total = sum(result.scores.values())
            log(
                f"{total:g} points ({result.seconds:.0f} s)"
                + (f"  -- {result.note}" if result.note else "")
            )
        path = grader.write_grades()
    finally:
        grader.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log(f"Wrote {path} and {grader.out / 'feedback'}/")
    return results
