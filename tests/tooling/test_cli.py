"""The command line: exit codes and one-line messages for good and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ROOT, run_cli, student_path


def test_doctor_reports_versions_and_device():
    result = run_cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for word in ("python", "torch", "device", "widgets", "Ready for the course."):
        assert word in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["release", "99_no_such_lab"], "unknown lab '99_no_such_lab'"),
        (["build", "99_no_such_lab"], "unknown lab '99_no_such_lab'"),
        (["grade", "missing.ipynb"], "missing.ipynb: no such file or folder"),
        (["grade", "README.md"], "README.md: not a notebook (expected a .ipynb file)"),
        (["grade", "course_utils"], "course_utils: expected a lab folder holding one notebook"),
        (["release", "--output", "solutions/out"], "refusing to write the release into"),
    ],
    ids=[
        "release-unknown-lab",
        "build-unknown-lab",
        "grade-missing-file",
        "grade-not-notebook",
        "grade-folder-without-notebook",
        "release-into-solutions",
    ],
)
def test_bad_input_gets_one_line_and_exit_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_grade_rejects_broken_notebook_json(tmp_path):
    broken = tmp_path / "00_start_here.ipynb"
    broken.write_text("{not json")
    result = run_cli("grade", str(broken))
    assert result.returncode == 2
    assert "not a readable notebook" in result.stderr


def test_grade_needs_a_known_lab(tmp_path):
    nb = json.loads(student_path("00_start_here").read_text())
    nb["metadata"].pop("course", None)
    path = tmp_path / "my_copy.ipynb"
    path.write_text(json.dumps(nb))
    result = run_cli("grade", str(path))
    assert result.returncode == 2
    assert "cannot tell which lab" in result.stderr and "--lab" in result.stderr


def test_unknown_command_and_grade_lab_choice_are_argparse_errors():
    assert run_cli("frobnicate").returncode == 2
    result = run_cli("grade", str(student_path("00_start_here")), "--lab", "nope")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_build_and_release_check_pass_on_the_committed_tree():
    build = run_cli("build", "--check")
    assert build.returncode == 0, build.stdout + build.stderr
    release = run_cli("release", "--check")
    assert release.returncode == 0, release.stdout + release.stderr
    assert "notebooks/ is up to date" in release.stdout


def test_help_lists_the_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("doctor", "build", "release", "grade", "start", "student-copy"):
        assert command in result.stdout
    assert ROOT.name  # the CLI ran from the course root


@pytest.mark.parametrize(
    "fail_under, score, code",
    [(None, 0.0, 0), ("0", 0.0, 0), ("3", 2.5, 1), ("2.5", 2.5, 0), ("3", 3.0, 0)],
)
def test_grade_fail_under_sets_the_exit_code(monkeypatch, capsys, fail_under, score, code):
    """Exit 0 whatever the score by default; with --fail-under N, 1 when the score is below N
    (the report is printed either way)."""
    from course_utils.tooling import cli, grading

    report = grading.GradeReport("nb.ipynb", "00_start_here", "smoke")
    report.tests.append(grading.TestResult("t", "ex", score, 3.0))
    monkeypatch.setattr(grading, "grade", lambda *args, **kwargs: report)
    argv = ["grade", str(student_path("00_start_here"))]
    assert cli.main(argv + (["--fail-under", fail_under] if fail_under else [])) == code
    out = capsys.readouterr()
    assert f"Score: {score:g}/3" in out.out
    assert ("below --fail-under" in out.err) == (code == 1)


@pytest.mark.parametrize("value", ["-1", "many", "nan"])
def test_grade_fail_under_rejects_what_is_not_a_number_of_points(value):
    result = run_cli("grade", str(student_path("00_start_here")), "--fail-under", value)
    assert result.returncode == 2 and "expected" in result.stderr and value in result.stderr


def test_a_python_without_the_course_packages_names_the_one_to_use(tmp_path):
    """A terminal whose ~/.bashrc ran `pyenv init` finds another Python: instead of a
    traceback, one line says what is missing and which Python to run (exit 2)."""
    import os
    import subprocess
    import sys

    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", bare], check=True)
    env = {**os.environ, "COURSE_PYTHON_BIN": str(Path(sys.executable).parent)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [bare / "bin" / "python", "-m", "course_utils", "grade", "lab.ipynb"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    # (which module it misses first depends on import order: nbformat, nbgrader, ...)
    assert len(lines) == 1 and "lacks '" in lines[0] and "the course needs" in lines[0], lines
    assert f"{Path(sys.executable).parent / 'python'} -m course_utils grade lab.ipynb" in lines[0]


def test_doctor_says_when_a_new_terminal_finds_another_python(tmp_path):
    import os
    import shutil
    import sys

    from course_utils.tooling.doctor import _terminal_check

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    home = tmp_path / "home"
    other = tmp_path / "other" / "bin"
    other.mkdir(parents=True)
    home.mkdir()
    (other / "python").write_text("#!/bin/sh\n")
    (other / "python").chmod(0o755)
    env = {"HOME": str(home), "SHELL": bash, "PATH": os.environ["PATH"]}
    (home / ".bashrc").write_text(f'export PATH="{other}:$PATH"\n')
    check = _terminal_check(env)
    assert check.ok and f"python is {other / 'python'}, not this one" in check.detail, check
    (home / ".bashrc").write_text(f'export PATH="{Path(sys.executable).parent}:$PATH"\n')
    assert "is this one" in _terminal_check(env).detail
