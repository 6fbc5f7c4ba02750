"""nbgrader configuration for the course: sources in solutions/, releases in notebooks/.

The settings themselves live in course_utils.tooling.nbgrader_setup so that the instructor's
nbgrader commands and `python -m course_utils grade` behave the same.
"""

from pathlib import Path

from course_utils.tooling.nbgrader_setup import configure

c = get_config()  # noqa: F821 - provided by nbgrader when it reads this file
configure(c)
# The course folder is the one this file is in (an absolute path: nbgrader warns otherwise).
c.CourseDirectory.root = str(Path(__file__).resolve().parent)
