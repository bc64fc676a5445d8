"""``python -m tlcourse.figures``: rebuild every diagram in assets/."""

from . import build_all

for path in build_all():
    print(f"wrote {path}")
