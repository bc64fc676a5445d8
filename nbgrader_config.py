"""nbgrader reads this file when run from the repository root (formgrader, nbgrader CLI).

``COURSE_GRADEBOOK=/path/to/gradebook.db`` replaces the default ``grader/gradebook.db``
(the tests use it so that a formgrader they start leaves nothing behind). ``python -m grader
grade`` fills the same gradebook, and puts each graded notebook beside it in ``autograded/``,
where the formgrader looks for it.
"""

import os
from pathlib import Path

from grader.config import repository_config

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)
_gradebook = os.environ.get("COURSE_GRADEBOOK")
c.merge(repository_config(Path(_gradebook)) if _gradebook else repository_config())
