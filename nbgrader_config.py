"""nbgrader configuration for the course: sources in solutions/, releases in notebooks/.

The settings themselves live in course_utils.tooling.nbgrader_setup so that the instructor's
nbgrader commands and `python -m course_utils grade` behave the same.
"""

from course_utils.tooling.nbgrader_setup import configure

c = get_config()  # noqa: F821 - provided by nbgrader when it reads this file
configure(c)
c.CourseDirectory.root = "."
