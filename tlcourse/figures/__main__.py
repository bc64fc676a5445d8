"""``python -m tlcourse.figures DIR``: write every diagram into DIR as a PNG file.

The lectures carry the diagrams themselves: ``make figures`` redraws them there.
"""

import sys
from pathlib import Path

from . import build_all

if len(sys.argv) != 2:
    sys.exit("usage: python -m tlcourse.figures DIR   (make figures redraws the notebooks' own)")
for path in build_all(Path(sys.argv[1])):
    print(f"wrote {path}")
