"""Issue 21 ("cut what is waste"): the course's command processes and autograde's workers do
not import ``rfc3987_syntax`` (1.3 of jsonschema's 1.5 CPU s of import, paid by every process
that reads a notebook; see :mod:`course_utils.tooling.quick_imports`), and notebooks are still
validated in them. Each test runs the real entry point in a subprocess with ``-X importtime``
and reads which modules it imported; about 6 s in all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB = "00_start_here"


# What the slow import loads (rfc3987_syntax itself is listed even when its import fails at once).
SLOW = ("rfc3987_syntax.syntax_helpers", "lark")


def imported(stderr: str) -> set[str]:
    """Module names from ``-X importtime``'s lines ("import time: self | cumulative | name"),
    also those whose import failed."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def run_python(code: str) -> str:
    """Standard output of ``python -c code`` in the repository; fails on a non-zero exit."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_slow_package_is_installed_here():
    """Else the tests below could not fail: jsonschema would skip it on its own."""
    pytest.importorskip("rfc3987_syntax", reason="rfc3987-syntax not installed here")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import jsonschema"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert set(SLOW) <= imported(done.stderr)


def test_a_course_command_reads_notebooks_without_it():
    pytest.importorskip("rfc3987_syntax", reason="rfc3987-syntax not installed here")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "course_utils", "release", LAB, "--check"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    names = imported(done.stderr)
    assert "jsonschema" in names and "nbformat" in names  # it did read notebooks
    assert not set(SLOW) & names


def test_an_autograde_worker_starts_without_it(tmp_path):
    pytest.importorskip("rfc3987_syntax", reason="rfc3987-syntax not installed here")
    from course_utils.tooling.autograde import worker_command

    cmd = worker_command(LAB)
    done = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]],
        cwd=tmp_path, input="", capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    names = imported(done.stderr)
    assert "nbgrader.apps" in names and "jsonschema" in names
    assert not set(SLOW) & names


def test_validation_still_works_without_it():
    """A notebook that breaks nbformat's schema is still refused in such a process."""
    code = (
        "from course_utils.tooling.quick_imports import skip_slow_format_checkers\n"
        "assert skip_slow_format_checkers()\n"
        "import sys, nbformat\n"
        "assert sys.modules['rfc3987_syntax'] is None\n"
        "nb = nbformat.v4.new_notebook()\n"
        "nb.cells.append(nbformat.v4.new_code_cell('x = 1'))\n"
        "nbformat.validate(nb)\n"
        "nb.cells[0]['source'] = 7\n"
        "try:\n"
        "    nbformat.validate(nb)\n"
        "except nbformat.ValidationError:\n"
        "    print('refused')\n"
    )
    assert run_python(code).strip() == "refused"


def test_it_changes_nothing_once_jsonschema_is_loaded():
    code = (
        "import sys, jsonschema\n"
        "from course_utils.tooling.quick_imports import skip_slow_format_checkers\n"
        "print(skip_slow_format_checkers(), sys.modules.get('rfc3987_syntax', 'absent') is None)\n"
    )
    assert run_python(code).split() == ["False", "False"]
