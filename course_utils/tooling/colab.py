"""Self-grading on Google Colab.

On Colab a notebook lives in the browser (or in Google Drive), not in a folder next to the
course, and only the ``course_utils`` package is installed. Each notebook's setup cell
therefore fetches the course with a shallow ``git clone`` into
:data:`course_utils.config.COLAB_COURSE_DIR` and prints the one line that grades the notebook
there, :data:`GRADE_LINE`. That line:

1. asks Colab's front end for the notebook as it is now (unsaved edits included) and writes
   it to ``/content/graded/<lab>.ipynb``, leaving out the cell that holds :data:`GRADE_LINE`
   (grading tools are not graded work);
2. runs ``python -m course_utils grade`` on that copy, with ``COURSE_ROOT`` set to the clone.
   nbgrader (which needs a newer Jupyter than Colab's own) goes into a separate virtual
   environment that sees Colab's packages, so Colab's runtime stays as it was.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .. import config

GRADE_LINE = "from course_utils.tooling.colab import grade_this_notebook; grade_this_notebook()"
GRADED_DIR = Path("/content/graded")
GRADER_ENV = Path("/content/course-grader")
NBGRADER = "nbgrader==0.9.6"  # as in pyproject.toml's `course` extra (a test checks)


def calls_grade(source: str) -> bool:
    """Whether ``source`` calls :func:`grade_this_notebook` (a string naming it does not)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # magics and the like: not the grading line
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == "grade_this_notebook":
                return True
    return False


def without_grade_cells(nb: dict) -> dict:
    """``nb`` without the code cells that call :func:`grade_this_notebook`."""

    def source(cell) -> str:
        text = cell.get("source", "")
        return "".join(text) if isinstance(text, list) else text

    kept = [
        c
        for c in nb.get("cells", [])
        if not (c.get("cell_type") == "code" and calls_grade(source(c)))
    ]
    return {**nb, "cells": kept}


def lab_of(nb: dict) -> str:
    lab = nb.get("metadata", {}).get("course", {}).get("lab")
    if lab not in config.LAB_NAMES:
        raise RuntimeError(
            "this notebook does not say which course lab it is (metadata course.lab); "
            "open the lab from the course's Colab links"
        )
    return lab


def save_this_notebook(folder: Path = GRADED_DIR) -> Path:
    """Write the notebook open in Colab to ``folder/<lab>.ipynb``; return the path."""
    from google.colab import _message  # Colab only

    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=120)
    if not reply or "ipynb" not in reply:
        raise RuntimeError("Colab did not hand over the notebook; save it (Ctrl+S) and retry")
    nb = without_grade_cells(reply["ipynb"])
    path = Path(folder) / f"{lab_of(nb)}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def grader_python() -> str:
    """A Python that can run ``grade``: this one if it has nbgrader, else a separate venv
    (made once, about a minute) that sees this Python's packages and adds nbgrader."""
    try:
        import nbgrader  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    python = GRADER_ENV / "bin" / "python"
    if not python.exists():
        print("Installing the grading tools (once per session, about a minute) ...", flush=True)
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", "--system-site-packages", str(GRADER_ENV)],
                check=True,
            )
            subprocess.run([str(python), "-m", "pip", "install", "-q", NBGRADER], check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            shutil.rmtree(GRADER_ENV, ignore_errors=True)  # so that the next try starts afresh
            raise RuntimeError(
                f"Could not install the grading tools ({NBGRADER}: {error}): check that this "
                f"runtime is online and run the grading line again; if it fails again, report "
                f"it at {config.issues_url()}"
            ) from None
    return str(python)


def grade_this_notebook(*extra: str) -> int:
    """Grade the notebook open in Colab, as ``python -m course_utils grade`` would; print the
    report and return grade's exit code. ``extra``: more options for grade (``"--json"``)."""
    path = save_this_notebook()
    env = {**os.environ, "COURSE_ROOT": os.environ.get("COURSE_ROOT", config.COLAB_COURSE_DIR)}
    command = [grader_python(), "-m", "course_utils", "grade", str(path), *extra]
    return subprocess.run(command, env=env, check=False).returncode
