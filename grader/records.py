"""One record per graded student: everything the grader concluded, written once, atomically.

``OUT/records/<student_id>.json`` is the only place a student's outcome is kept; grades.csv
and lms_grades.csv are derived from the records (grader/report.py). A student interrupted
half-way has no record and is graded again by the next run.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    """Write ``record`` into ``out`` atomically (a reader never sees half of it)."""
    path = record_path(out, record.student_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(asdict(record), indent=1, sort_keys=True))
    partial.replace(path)
    return path


def read_records(out: Path) -> dict[str, Record]:
    """Every record in ``out``, by student id."""
    records = {}
    for path in sorted((Path(out) / "records").glob("*.json")):
        record = Record(**json.loads(path.read_text()))
        records[record.student_id] = record
    return records
