"""Hand objects from a student's notebook to the grader, which checks them again elsewhere.

When the lab is graded, every hidden test calls :func:`hand_in` with the objects it checks.
The grader then runs the same tests once more in a clean kernel, where no student code ran,
on the objects loaded back with :func:`load_handed_in`. Keras models travel as ``.keras``
files (loaded with ``safe_mode=True``: no Lambda layers, no custom code), other values as
JSON. Outside grading (``COURSE_HANDIN_DIR`` unset) :func:`hand_in` does nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

HANDIN_ENV = "COURSE_HANDIN_DIR"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
MAX_BYTES = 64 << 20  # a MobileNetV2 model file is about 10 MB


def handin_dir() -> Path | None:
    """The folder objects are handed in to, or None outside grading."""
    named = os.environ.get(HANDIN_ENV, "").strip()
    return Path(named) if named else None


def hand_in(**objects: Any) -> None:
    """Save each object for the grader's second check: ``hand_in(model=model)``."""
    folder = handin_dir()
    if folder is None:
        return
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    for name, value in objects.items():
        if not NAME.match(name):
            raise ValueError(f"cannot hand in {name!r}: use a lower-case Python name")
        for old in folder.glob(f"{name}.*"):
            old.unlink()
        if isinstance(value, keras.Model):
            keras.saving.save_model(value, folder / f"{name}.keras")
        else:
            (folder / f"{name}.json").write_text(json.dumps(value))


def load_handed_in(folder: Path) -> dict[str, Any]:
    """Every object handed in to ``folder``, by name; models loaded in safe mode.

    An object that cannot be loaded is left out (its test then fails with a NameError);
    the reason is printed. A file loaded before in this process, and unchanged since, is
    not loaded again (the grader has the checking kernel load hand-ins as they arrive).
    """
    found: dict[str, Any] = {}
    for path in sorted(Path(folder).glob("*")):
        name = path.stem
        if not NAME.match(name) or path.suffix not in (".keras", ".json"):
            continue
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
            print(f"{path.name}: not a regular file under {MAX_BYTES >> 20} MB, ignored")
            continue
        stat = path.stat()
        key = (str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size)
        try:
            if key not in _LOADED:
                _LOADED[key] = _load(path)
            found[name] = _LOADED[key]
        except Exception as error:  # noqa: BLE001 - anything a crafted file may raise
            print(f"{path.name} could not be loaded: {type(error).__name__}: {error}"[:400])
    return found


_LOADED: dict[tuple, Any] = {}


def _load(path: Path) -> Any:
    if path.suffix == ".json":
        return json.loads(path.read_text())
    import keras

    return keras.saving.load_model(path, safe_mode=True)
