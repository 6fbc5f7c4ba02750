"""Issue 11, section 4: what JupyterLab, git and people do to notebooks gets one clear line and
exit 2 (or is repaired and graded, with a note), never a traceback; and the README's instructor
steps work as written on a fresh copy of the course."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, load, run_cli, save, solution_path, student_path

from course_utils.tooling import cli
from course_utils.tooling.course_dir import CourseError, read_notebook_json

LAB = "00_start_here"


def _one_line_exit_2(result, message):
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture()
def course_copy(tmp_path):
    for name in ("solutions", "notebooks"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("*.backup-*"))
    shutil.copy2(ROOT / "nbgrader_config.py", tmp_path)
    return tmp_path


def test_nbformat_3_says_how_to_convert(tmp_path):
    path = tmp_path / f"{LAB}.ipynb"
    path.write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": []}))
    _one_line_exit_2(run_cli("grade", str(path)), "nbformat 3: open and save it in JupyterLab")


def test_an_unreadable_notebook_is_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / f"{LAB}.ipynb"
    path.write_text("{}")

    original = Path.read_text

    def refuse(self, *args, **kwargs):
        if self.name != path.name:
            return original(self, *args, **kwargs)
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(CourseError, match="cannot read it"):
        read_notebook_json(path)
    assert cli.main(["grade", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Permission denied" in err and len(err.splitlines()) == 1


def test_a_notebook_of_another_lab(tmp_path):
    _one_line_exit_2(
        run_cli("grade", str(student_path(LAB)), "--lab", "01_tokens_and_embeddings"),
        f"is a notebook of lab {LAB}, not 01_tokens_and_embeddings",
    )
    nb = load(student_path(LAB))
    nb["metadata"].pop("course", None)
    path = save(nb, tmp_path / "copy.ipynb")
    _one_line_exit_2(
        run_cli("grade", str(path), "--lab", "01_tokens_and_embeddings"),
        "does not belong to lab 01_tokens_and_embeddings",
    )


@pytest.mark.parametrize("command", ["grade", "release"])
def test_a_conflicted_solutions_notebook(course_copy, command):
    source = course_copy / "solutions" / LAB / f"{LAB}.ipynb"
    lines = source.read_text().splitlines(keepends=True)
    source.write_text(
        "".join(lines[:5]) + "<<<<<<< HEAD\n" + "".join(lines[5:8]) + "=======\n>>>>>>> x\n"
    )
    args = ["grade", str(student_path(LAB))] if command == "grade" else ["release", LAB]
    _one_line_exit_2(
        run_cli(*args, env={"COURSE_ROOT": str(course_copy)}), "unresolved git conflict markers"
    )
    source.write_text("{broken")
    _one_line_exit_2(
        run_cli(*args, env={"COURSE_ROOT": str(course_copy)}), "not a readable notebook"
    )


def test_release_output_pointing_at_a_file(tmp_path):
    target = tmp_path / "a_file.txt"
    target.write_text("x")
    _one_line_exit_2(run_cli("release", LAB, "--output", str(target)), "is a file")


def test_doctor_with_a_broken_widget_package(tmp_path):
    fake = tmp_path / "ipywidgets"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise RuntimeError('half-installed')\n")
    result = run_cli("doctor", env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "ipywidgets is broken (RuntimeError: half-installed)" in result.stdout
    assert "grading" in result.stdout  # the isolation line


def _git(*args, cwd):
    names = {"GIT_AUTHOR_NAME": "l", "GIT_AUTHOR_EMAIL": "l@x"}
    env = {**os.environ, **names, "GIT_COMMITTER_NAME": "l", "GIT_COMMITTER_EMAIL": "l@x"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def test_release_backs_up_committed_work_before_replacing_it(course_copy):
    target = course_copy / "notebooks" / LAB / f"{LAB}.ipynb"
    nb = load(target)
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "my run\n"}]
    code["execution_count"] = 1
    save(nb, target)
    _git("init", "-q", cwd=course_copy)
    _git("add", "-A", cwd=course_copy)
    _git("commit", "-qm", "my work", cwd=course_copy)
    worked_on = target.read_bytes()
    result = run_cli("release", LAB, env={"COURSE_ROOT": str(course_copy)})
    assert result.returncode == 0, result.stdout + result.stderr
    backups = list(target.parent.glob(f"{LAB}.backup-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == worked_on, result.stdout
    assert "backed up" in result.stdout


@pytest.mark.slow
def test_copied_cells_and_edited_locked_metadata_are_repaired_and_graded(tmp_path):
    nb = load(solution_path(LAB))
    index = next(
        i for i, c in enumerate(nb["cells"]) if c["metadata"].get("nbgrader", {}).get("solution")
    )
    duplicate = copy.deepcopy(nb["cells"][index])
    duplicate["id"] = "pasted-copy"
    nb["cells"].insert(index + 1, duplicate)  # JupyterLab's copy and paste keeps the metadata
    locked = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("locked"))
    locked["metadata"]["nbgrader"].update(locked=False, checksum="edited")
    path = save(nb, tmp_path / LAB / f"{LAB}.ipynb")
    result = run_cli("grade", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Score: 3/3" in result.stdout, result.stdout
    assert "is a copy of 'pick_device'" in result.stdout
    assert "had its grading settings edited" in result.stdout
    assert "Grading isolation:" in result.stdout


def _readme_instructor_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Teaching with it") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


@pytest.mark.slow
def test_the_readmes_instructor_steps_work_on_a_fresh_copy(tmp_path):
    """The README's commands, as written, for one lab (lab 00, the fastest): `collect` is
    replaced by placing the submissions where it would, as the README says."""
    for name in ("solutions", "notebooks"):
        (tmp_path / name / LAB).mkdir(parents=True)
        shutil.copy2(ROOT / name / LAB / f"{LAB}.ipynb", tmp_path / name / LAB)
    shutil.copy2(ROOT / "nbgrader_config.py", tmp_path)
    for student, notebook in (("ada", solution_path(LAB)), ("bob", student_path(LAB))):
        target = tmp_path / "submitted" / student / LAB / f"{LAB}.ipynb"
        target.parent.mkdir(parents=True)
        shutil.copy2(notebook, target)
    env = {
        **os.environ,
        "COURSE_ROOT": str(tmp_path),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
    }
    commands = _readme_instructor_commands()
    assert any(c.startswith("nbgrader autograde") for c in commands), commands
    for command in commands:
        if command.startswith("nbgrader collect"):
            continue
        words = command.replace("01_tokens_and_embeddings", LAB).split()
        if words[:4] == ["python", "-m", "course_utils", "release"] and len(words) == 4:
            words.append(LAB)  # the other labs are not in this copy
        words[0] = sys.executable if words[0] == "python" else words[0]
        done = subprocess.run(
            words, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    grades = (tmp_path / "grades.csv").read_text()
    assert "ada" in grades and "bob" in grades
    assert (tmp_path / "feedback" / "ada" / LAB / f"{LAB}.html").is_file()


def test_a_cell_whose_source_is_not_text(tmp_path):
    """Issue 21: one clear line and exit 2 (it was a bare NotebookValidationError); the file
    is not touched. (A renamed exercise is repaired and graded: see test_robustness.py.)"""
    nb = load(student_path(LAB))
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    cell["source"] = 42
    path = save(nb, tmp_path / LAB / f"{LAB}.ipynb")
    before = path.read_bytes()
    result = run_cli("grade", str(path))
    _one_line_exit_2(result, "source is not text")
    assert path.read_bytes() == before


def test_nbgraders_exporter_says_one_line_and_keeps_other_tracebacks(tmp_path):
    """Issue 21: what ``nbgrader autograde`` logs around the course's exporter (see
    test_autograde.py for the real run): a submission whose cell source is not text is one
    line in place of nbgrader's traceback; any other error keeps its traceback."""
    import logging
    import traceback

    from traitlets.config import LoggingConfigurable

    from course_utils.tooling.nbgrader_steps import CheckedNotebookExporter, SubmissionProblem

    log = logging.getLogger("test_bad_input.nbgrader")
    log.propagate = False
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    log.addHandler(handler)
    exporter = CheckedNotebookExporter(parent=LoggingConfigurable(log=log))
    nb = load(student_path(LAB))
    nb["cells"][2]["source"] = {"not": "text"}
    path = save(nb, tmp_path / "submitted" / "dee" / LAB / f"{LAB}.ipynb")
    before = path.read_bytes()
    resources = {"nbgrader": {"student": "dee", "assignment": LAB, "notebook": LAB}}

    def convert(step):  # what nbgrader's convert_notebooks does around each student
        try:
            step()
        except Exception:  # noqa: BLE001
            log.error("There was an error processing assignment: %s", "submitted/dee")
            log.error(traceback.format_exc())
        log.error("Please see the the above traceback for details on the specific errors")

    convert(lambda: exporter.from_filename(str(path), resources=resources))
    assert lines == [
        f"dee/{LAB}/{LAB}.ipynb: cell 3's source is not text (it is dict); the file was "
        "edited outside JupyterLab: restore that cell",
        "The lines above say what is wrong with each of these files.",
    ]
    assert path.read_bytes() == before
    with pytest.raises(SubmissionProblem):
        exporter.from_filename(str(path), resources=resources)
    lines.clear()

    def fails():
        raise RuntimeError("a fault of the grader")

    convert(fails)
    assert lines[0] == "There was an error processing assignment: submitted/dee"
    assert lines[1].startswith("Traceback") and "RuntimeError: a fault of the grader" in lines[1]
    assert lines[2].startswith("Please see the the above traceback")
    output, _ = exporter.from_filename(str(student_path(LAB)), resources=resources)
    assert json.loads(output)["cells"]  # a readable notebook converts as before
