"""Finding the course, and running nbgrader in a throw-away course directory.

``release`` and ``grade`` never run nbgrader in the repository itself: they copy what
nbgrader needs into a temporary course directory, run it there, and read the results back.
So no gradebook, no ``submitted/`` folder and no half-written notebook is ever left in the
course, and a learner's file is only ever read.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .. import config


class CourseError(Exception):
    """A problem the user can fix (bad path, unknown lab); the CLI prints it on one line."""


def find_root(start: Path | None = None) -> Path:
    """The course folder: the nearest parent of ``start`` (or of the working directory) that
    holds ``solutions/`` and ``nbgrader_config.py``; ``$COURSE_ROOT`` overrides."""
    if os.environ.get("COURSE_ROOT"):
        root = Path(os.environ["COURSE_ROOT"]).resolve()
        if not (root / "solutions").is_dir():
            raise CourseError(f"COURSE_ROOT={root} has no solutions/ folder")
        return root
    candidates = []
    for base in (start, Path.cwd(), Path(__file__).resolve().parent):
        if base is None:
            continue
        base = Path(base).resolve()
        candidates.extend([base, *base.parents])
    for candidate in candidates:
        if (candidate / "solutions").is_dir() and (candidate / "nbgrader_config.py").is_file():
            return candidate
    raise CourseError(
        "cannot find the course folder (one with solutions/ and nbgrader_config.py); "
        "run this from inside the course, or set COURSE_ROOT"
    )


def read_notebook_json(path: Path) -> dict:
    """Read ``path`` as a notebook, or raise CourseError saying what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise CourseError(f"{path}: no such file or folder")
    if path.is_dir():
        raise CourseError(f"{path}: is a folder, expected a notebook (.ipynb)")
    if path.suffix != ".ipynb":
        raise CourseError(f"{path}: not a notebook (expected a .ipynb file)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CourseError(f"{path}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise CourseError(f"{path}: not a readable notebook (not UTF-8 text)") from None
    if "\n<<<<<<< " in "\n" + text or "\n>>>>>>> " in text:
        raise CourseError(
            f"{path}: has unresolved git conflict markers (<<<<<<<); resolve the conflict "
            "(for a solution notebook: rebuild it with `python -m course_utils build`)"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise CourseError(
            f"{path}: not a readable notebook (broken JSON at line {error.lineno})"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("nbformat"), int) and data["nbformat"] < 4:
        raise CourseError(
            f"{path}: nbformat {data['nbformat']}: open and save it in JupyterLab "
            "(that converts it to nbformat 4)"
        )
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise CourseError(f"{path}: not a notebook (no cells)")
    return data


@contextlib.contextmanager
def nbgrader_environment() -> Iterator[None]:
    """nbgrader runs the ``alembic`` executable that sits beside this Python: put it on PATH."""
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + old
    try:
        yield
    finally:
        os.environ["PATH"] = old


@contextlib.contextmanager
def temporary_course(
    root: Path,
    labs: list[str],
    *,
    profile: str | None = None,
    safeguard: bool = True,
    scan: bool = True,
):
    """A temporary nbgrader course with the given labs as sources; yields (api, course_dir).

    The labs' notebooks are generated into the temporary release folder, which also creates
    the gradebook entries that autograding needs.
    """
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    from .nbgrader_setup import configure

    with tempfile.TemporaryDirectory(prefix="course-nbgrader-") as tmp, nbgrader_environment():
        course = Path(tmp)
        for name in labs:
            config.lab(name)
            source = root / "solutions" / name / f"{name}.ipynb"
            if not source.is_file():
                raise CourseError(f"{source} does not exist; run `python -m course_utils build`")
            read_notebook_json(source)  # a corrupt or conflicted source: one clear line
            (course / "source" / name).mkdir(parents=True)
            shutil.copy2(source, course / "source" / name / source.name)
        c = Config()
        configure(c, profile=profile, safeguard=safeguard, scan=scan)
        # The course's own solutions are hidden from (or watched around) every kernel too.
        c.GuardedExecute.course_root = str(Path(root).resolve())
        c.CourseDirectory.root = str(course)
        c.CourseDirectory.source_directory = "source"
        c.CourseDirectory.release_directory = "release"
        c.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
        c.CourseDirectory.log_level = "WARN"
        api = NbGraderAPI(config=c)
        api.log.setLevel("WARNING")
        for name in labs:
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader could not release {name}:\n{result['error']}")
        yield api, course
