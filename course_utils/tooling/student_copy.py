"""``python -m course_utils student-copy DEST``: the course as students of a class receive it.

The repository holds every solution and every hidden test (``solutions/``), and the test
suite and benchmarks that read them. A class's students get a copy without them:

- the files git tracks (or, outside a git checkout, the course folder), less ``solutions/``,
  ``tests/``, ``benchmarks/`` and ``.ci/``, and less anything grading left behind
  (``submitted/``, ``autograded/``, ``feedback/``, ``gradebook.db``, ``grades.csv``);
- ``solutions/<lab>/<lab>.ipynb`` replaced by the released notebook (``notebooks/``): no
  solution and no hidden test, so that ``python -m course_utils grade`` still works in the
  copy and grades the visible tests only.

The instructor keeps the real ``solutions/`` (and the grading secret, see the README) on the
grading side. :mod:`classroom` builds the students' environment from such a copy.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .. import config
from .course_dir import CourseError

LEFT_OUT = ("solutions", "tests", "benchmarks", ".ci", ".git")
GRADING_LEFTOVERS = (
    "submitted",
    "autograded",
    "feedback",
    "release",
    "source",
    "gradebook.db",
    "grades.csv",
)


def _course_files(root: Path) -> list[Path]:
    """Paths (relative to ``root``) of the course's files: git's list, or a walk of the tree."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z"],
            capture_output=True,
            check=True,
            text=True,
        ).stdout
        files = [Path(p) for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    return [
        path
        for path in files
        if path.parts
        and path.parts[0] not in LEFT_OUT + GRADING_LEFTOVERS
        and "__pycache__" not in path.parts
        and ".ipynb_checkpoints" not in path.parts
        and (root / path).is_file()
    ]


def student_copy(root: Path, dest: Path) -> list[Path]:
    """Write the students' copy of the course at ``root`` into ``dest``; return its files."""
    root, dest = Path(root).resolve(), Path(dest).resolve()
    if dest == root or root in dest.parents:
        raise CourseError(f"{dest}: choose a folder outside the course folder")
    if dest.exists() and any(dest.iterdir()):
        raise CourseError(f"{dest}: not empty; choose a new or empty folder")
    written = []
    for relative in _course_files(root):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target)
        written.append(target)
    for lab in config.LAB_NAMES:
        released = root / "notebooks" / lab / f"{lab}.ipynb"
        if not released.is_file():
            raise CourseError(f"{released} does not exist; run `python -m course_utils release`")
        target = dest / "solutions" / lab / f"{lab}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(released, target)
        written.append(target)
    return written
