"""One record per graded student: everything the grader concluded, written once, atomically.

``OUT/records/<student_id>.json`` is the only place a student's outcome is kept; grades.csv
and lms_grades.csv are derived from the records (grader/report.py). A student interrupted
half-way has no record and is graded again by the next run. A record that cannot be read
whole (a power cut while it was written, an edit by hand) is moved aside, never deleted,
and its student is graded again. One grader at a time writes into an OUT (:func:`out_lock`).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import math
import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path

from .collect import CollectError

GRADED = "graded"  # scores are final (a kernel that died scores 0, and is graded)
NOT_GRADED = "not graded"  # the file cannot be graded as this lab: 0, the note says why
GRADER_PROBLEM = "grader problem"  # the grader failed, not the student: graded again next run


@dataclass
class Record:
    student_id: str
    status: str
    digest: str  # of the master and the submission: a record of other files is stale
    scores: dict[str, float]  # per part, final: the lower of the two runs
    note: str = ""
    notebook_scores: dict[str, float] = field(default_factory=dict)  # per part, student's kernel
    clean_scores: dict[str, float] = field(default_factory=dict)  # per part, clean kernel
    feedback: str = ""  # path of the feedback file, relative to OUT ("" when none)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # where the seconds went
    identity: dict[str, str | bool] = field(default_factory=dict)  # grader.collect.Identity
    cell_scores: dict[str, float] = field(default_factory=dict)  # per test cell, final

    @property
    def total(self) -> float:
        return sum(self.scores.values())


def submission_digest(master_digest: str, path: Path) -> str:
    """What was graded: the master's digest and the submission's bytes."""
    data = path.read_bytes() if path.is_file() else b""
    return hashlib.sha256(master_digest.encode() + b"\0" + data).hexdigest()


def record_path(out: Path, student_id: str) -> Path:
    return Path(out) / "records" / f"{student_id}.json"


def write_record(out: Path, record: Record) -> Path:
    """Write ``record`` into ``out`` atomically and durably (a reader never sees half of it,
    and a power cut leaves either the old file or the new one)."""
    path = record_path(out, record.student_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(record), indent=1, sort_keys=True))
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


def read_records(out: Path, log: Callable[[str], None] = print) -> dict[str, Record]:
    """Every record in ``out``, by student id. A file that is not a whole record is moved
    aside to ``<id>.json.corrupt`` and said in one line: that student has no record (the run
    grades them again)."""
    records = {}
    for path in sorted((Path(out) / "records").glob("*.json")):
        try:
            record = parse_record(path.read_text(encoding="utf-8"), path.stem)
        except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
            log(f"{path.stem}: records/{path.name} is not a whole record ({error}); {_aside(path)}")
            continue
        records[record.student_id] = record
    return records


class BadRecord(ValueError):
    """A records file that does not hold a whole record; the message says what is wrong."""


def parse_record(text: str, student_id: str) -> Record:
    """The record of ``student_id`` in ``text``; :class:`BadRecord` saying what is wrong."""
    if not text.strip():
        raise BadRecord("the file is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRecord(f"not JSON, cut short or damaged: {error.msg}") from None
    if not isinstance(data, dict):
        raise BadRecord(f"JSON {type(data).__name__}, not an object")
    known = {f.name: f for f in fields(Record)}
    unknown = sorted(set(data) - set(known))
    missing = sorted(name for name, f in known.items() if name not in data and _required(f))
    if missing:
        raise BadRecord(f"not a record: no {', '.join(missing)}")
    if unknown:
        raise BadRecord(f"not a record: unknown {', '.join(unknown)[:80]}")
    for name in ("student_id", "status", "digest", "note", "feedback"):
        if name in data and not isinstance(data[name], str):
            raise BadRecord(f"{name} is not text")
    for name in ("scores", "notebook_scores", "clean_scores", "phases", "cell_scores"):
        value = data.get(name, {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and _number(v) for k, v in value.items()
        ):
            raise BadRecord(f"{name} is not a mapping of names to numbers")
    identity = data.get("identity", {})
    if not isinstance(identity, dict) or not all(
        isinstance(k, str) and isinstance(v, str | bool) for k, v in identity.items()
    ):
        raise BadRecord("identity is not a mapping of names to text")
    if not _number(data.get("seconds", 0.0)):
        raise BadRecord("seconds is not a number")
    if data["status"] not in (GRADED, NOT_GRADED, GRADER_PROBLEM):
        raise BadRecord(f"unknown status {str(data['status'])[:40]!r}")
    if data["student_id"] != student_id:
        raise BadRecord(f"it is the record of {str(data['student_id'])[:40]!r}")
    return Record(**data)


def _required(f: Field) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _aside(path: Path) -> str:
    """Move ``path`` to a free ``<name>.corrupt[.N]`` beside it; say what became of it."""
    target, number = path.with_name(path.name + ".corrupt"), 1
    while target.exists():
        target, number = path.with_name(f"{path.name}.corrupt.{number}"), number + 1
    try:
        path.rename(target)
    except OSError as error:
        return f"it could not be moved aside ({error}); {path.stem} is graded again"
    return f"kept as records/{target.name}; {path.stem} is graded again"


LOCK_FILE = ".grader.lock"  # in OUT; its content says who holds it
_held: set[Path] = set()  # the OUT folders this process holds


class OutInUse(CollectError):
    """Another grader is grading into the same OUT (a CollectError: the command line says so
    in one ``grader:`` line and exits with status 2)."""


@contextlib.contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the block (again in the same process: no-op), or raise
    :class:`OutInUse` naming the process that holds it. The lock is an advisory ``flock``,
    released when the block ends or the process ends in any way (even SIGKILL): it is never
    left behind."""
    out = Path(out).resolve()
    if out in _held:
        yield
        return
    lock = out / LOCK_FILE
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise CollectError(
            f"cannot write into --out {out} ({error}): give a folder you can write"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutInUse(_in_use(out, os.pread(fd, 4096, 0))) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(" ".join(sys.orig_argv).split())[:300],  # one line
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode() + b"\n", 0)
        _held.add(out)
        try:
            yield
        finally:
            _held.discard(out)
    finally:
        os.close(fd)  # releases the lock


def _in_use(out: Path, content: bytes) -> str:
    try:
        holder = json.loads(content)
        who = (
            f"process {holder['pid']} on {holder['host']}, since {holder['since']} "
            f"({holder['command']})"
        )
    except (ValueError, TypeError, KeyError):
        who = f"a process that holds {out / LOCK_FILE}"
    return (
        f"another grader is grading into {out}: {who}. Wait for it to finish (or stop it), "
        "then run this command again; or give another --out"
    )
