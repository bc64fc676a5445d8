"""nbgrader reads this file when run from the repository root (formgrader, nbgrader CLI)."""

from grader.config import repository_config

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)
c.merge(repository_config())
