"""``python -m course_utils autograde LAB --jobs N`` (issue 21): a class graded in parallel
gets the same gradebook as one job, and the same as plain ``nbgrader autograde``.

One course folder (lab 00, the fastest) is set up once for the module; three submissions
(solved, untouched, one exercise wrong) are graded with one job, then again with two, each
time into a fresh gradebook. About 40 s of CPU in the smoke profile."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, load, replace_solution, run_cli, save, solution_path, student_path

pytestmark = pytest.mark.slow
LAB = "00_start_here"
WRONG = (
    "def bigram_counts(ids, vocab_size):\n"
    "    import torch\n\n"
    "    return torch.zeros(vocab_size, vocab_size)\n"
)


def _env(root: Path) -> dict:
    return {
        "COURSE_ROOT": str(root),
        "COURSE_PROFILE": "smoke",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
    }


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    (root / "solutions" / LAB).mkdir(parents=True)
    shutil.copy2(solution_path(LAB), root / "solutions" / LAB)
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", LAB, "--force"],
        cwd=root, env={**os.environ, **_env(root)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    wrong = replace_solution(load(solution_path(LAB)), "bigram_counts", WRONG)
    for student, nb in (
        ("ada", load(solution_path(LAB))),
        ("bob", load(student_path(LAB))),
        ("cy", wrong),
    ):
        save(nb, root / "submitted" / student / LAB / f"{LAB}.ipynb")
    return root


def _grades(root: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return {
            student: {g.name: (g.auto_score, g.max_score) for g in sub.grades}
            | {"code_score": sub.code_score}
            for student in ("ada", "bob", "cy")
            for sub in [gb.find_submission_notebook(LAB, LAB, student)]
        }


def _fresh(course: Path, name: str) -> Path:
    """A copy of the course with the gradebook as generate_assignment left it."""
    copy = course.parent / name
    shutil.copytree(course, copy)
    return copy


@pytest.fixture(scope="module")
def graded(course):
    """{jobs: course folder graded with that many jobs}, for 1 and 2."""
    roots = {}
    for jobs in (1, 2):
        root = _fresh(course, f"jobs{jobs}")
        done = run_cli("autograde", LAB, "--jobs", str(jobs), cwd=root, env=_env(root))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{min(jobs, 3)} at a time" in done.stdout, done.stdout
        assert "3 of 3 graded" in done.stdout, done.stdout
        assert (root / "autograded" / "cy" / LAB / f"{LAB}.ipynb").is_file()
        roots[jobs] = root
    return roots


def test_two_jobs_give_the_gradebook_of_one(graded):
    results = {jobs: _grades(root) for jobs, root in graded.items()}
    assert results[1] == results[2]
    one = results[1]
    full = sum(max_score for key, (_, max_score) in _items(one["ada"]))
    assert one["ada"]["code_score"] == full > 0
    assert one["bob"]["code_score"] == 0
    assert 0 < one["cy"]["code_score"] < full  # pick_device right, bigram_counts wrong


def test_feedback_page_a_student_can_use(graded):
    """nbgrader generate_feedback with the course's config: each exercise by name with its
    points, the check's message and hint; no hidden tests, no grader frames; lines wrap; and
    none of the warnings an instructor used to see on every run."""
    root = graded[2]
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_feedback", LAB, "--force"],
        cwd=root, env={**os.environ, **_env(root)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    log = done.stdout + done.stderr
    for noise in ("is not absolute", "not recognized by", "SAWarning", "has changed"):
        assert noise not in log, log
    page = (root / "feedback" / "cy" / LAB / f"{LAB}.html").read_text(encoding="utf-8")
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert re.search(r"Exercise 1:\s+pick_device\s+\(1\.0 / 1\.0 points", text), text[:3000]
    assert re.search(r"Exercise 2:\s+bigram_counts\s+\(0\.0 / 2\.0 points", text)
    assert "✗ failed" in text and "✓ passed" in text
    assert "Hint: Pair ids[:-1] with ids[1:]" in text  # bigram_counts' hint, under it
    assert "The idea: A bigram is a pair of neighbouring ids" in text  # and its nudge
    assert "BEGIN HIDDEN TESTS" not in page and "hidden tests: run by the grader" in page
    assert "__course_checks__" not in page and "site-packages" not in page
    assert "course_utils/checks.py" not in page
    assert "white-space: pre-wrap" in page
    assert "Test cell</a>" not in page  # no anonymous links


def _items(grades: dict):
    return [(k, v) for k, v in grades.items() if k != "code_score"]


def test_bad_requests_are_one_line(course, tmp_path):
    done = run_cli("autograde", LAB, "--jobs", "0", cwd=course, env=_env(course))
    assert done.returncode == 2 and "expected 1 or more jobs" in done.stderr
    empty = tmp_path / "empty"
    (empty / "solutions").mkdir(parents=True)
    shutil.copy2(ROOT / "nbgrader_config.py", empty)
    done = run_cli("autograde", LAB, cwd=empty, env=_env(empty))
    assert done.returncode == 2 and done.stderr.startswith("error: no submissions"), done.stderr
    (empty / "submitted" / "ada" / LAB).mkdir(parents=True)
    done = run_cli("autograde", LAB, cwd=empty, env=_env(empty))
    assert done.returncode == 2 and "generate_assignment" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_submission_whose_cell_source_is_not_text_is_one_line(course):
    """Issue 21: nbgrader cannot read such a notebook; our autograde does not hand it over,
    says one line for that student, leaves the file alone and grades the others."""
    root = _fresh(course, "not-text")
    nb = load(student_path(LAB))
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    cell["source"] = [1, 2, 3]
    bad = save(nb, root / "submitted" / "dee" / LAB / f"{LAB}.ipynb")
    nb["cells"][0]["source"] = None
    save(nb, root / "submitted" / "eve" / LAB / f"{LAB}.ipynb")
    before = bad.read_bytes()
    done = run_cli(
        "autograde", LAB, "--jobs", "2", "--student", "dee", "--student", "eve",
        "--student", "ada", cwd=root, env=_env(root),
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    (dee,) = [line for line in out.splitlines() if line.strip().startswith("dee:")]
    assert "NOT GRADED" in dee and "source is not text (it is list)" in dee, out
    (eve,) = [line for line in out.splitlines() if line.strip().startswith("eve:")]
    assert "cell 1's source is not text (it is NoneType)" in eve, out
    assert "Traceback" not in out + done.stderr
    assert re.search(r"ada: (\d+(\.\d+)?)/\1 ", out), out  # the others are graded
    assert "1 of 3 graded" in out
    assert bad.read_bytes() == before


def test_plain_nbgrader_autograde_says_one_line_for_a_cell_that_is_not_text(course):
    """Issue 21: plain ``nbgrader autograde`` (the course's nbgrader_config.py) stopped on a
    cell whose source is not text with nbformat's validation error and nbgrader's traceback.
    Now that student is one line naming the file and the cell, the file is left as it was,
    and the others are graded: an honest correct student, and one whose exercise was renamed
    (repaired, graded, one line)."""
    root = _fresh(course, "plain-not-text")
    for student in ("bob", "cy"):
        shutil.rmtree(root / "submitted" / student)
    nb = load(student_path(LAB))
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    cell["source"] = 5
    bad = save(nb, root / "submitted" / "dee" / LAB / f"{LAB}.ipynb")
    before = bad.read_bytes()
    renamed = load(solution_path(LAB))
    for cell in renamed["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "bigram_counts":
            cell["metadata"]["nbgrader"]["grade_id"] = "my_bigrams"
    save(renamed, root / "submitted" / "ren" / LAB / f"{LAB}.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "autograde", LAB, "--force"],
        cwd=root, env={**os.environ, **_env(root)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert done.returncode == 1, log  # nbgrader's status when a student could not be graded
    assert "Traceback" not in log and "NotebookValidationError" not in log, log
    assert "Notebook JSON is invalid" not in log, log
    (line,) = [line for line in log.splitlines() if "source is not text" in line]
    assert f"dee/{LAB}/{LAB}.ipynb: cell " in line and "(it is int)" in line, line
    assert "restore that cell" in line
    assert "There was an error processing assignment '00_start_here' for student 'dee'" in log
    assert "above traceback" not in log, log
    (line,) = [line for line in log.splitlines() if "grade id changed" in line]
    assert "from 'bigram_counts' to 'my_bigrams'" in line, line
    assert bad.read_bytes() == before
    assert not (root / "autograded" / "dee" / LAB / f"{LAB}.ipynb").exists()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        scores = {
            student: (sub.code_score, sub.max_code_score)
            for student in ("ada", "ren")
            for sub in [gb.find_submission_notebook(LAB, LAB, student)]
        }
    assert scores["ada"] == scores["ren"] == (3, 3), scores


def _solved_release(root: Path) -> dict:
    """The notebook as released to the class, with every exercise solved."""
    nb = load(root / "notebooks" / LAB / f"{LAB}.ipynb")
    for cell in load(solution_path(LAB))["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            nb = replace_solution(nb, meta["grade_id"], cell["source"])
    return nb


def _impostor(nb: dict, test: str = "test_bigram_counts") -> dict:
    """``nb`` with a locked test cell edited in the JSON: its tests replaced by ``pass``, its
    grade id and its cell id changed (so that nothing ties it to the released cell)."""
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == test:
            cell["source"] = "pass"
            cell["metadata"]["nbgrader"].update(grade_id="my_own_test", points=0)
            cell["id"] = "my-own-cell"
            return nb
    raise KeyError(test)


def test_an_edited_test_cell_with_new_ids_is_graded_with_the_original(course):
    """Issue 21, edited locked test cell: a test cell replaced by ``pass`` whose grade id and
    cell id were both changed was graded as a cell the learner added (its points left to a
    person, nothing said). Now the released test cell is put back in its place, its hidden
    tests run, the correct student keeps full marks, the wrong one gets zero on that exercise,
    and one line says so, in plain ``nbgrader autograde`` and in ``course_utils autograde``;
    the submitted files are not touched, and an honest student graded after keeps his score."""
    root = _fresh(course, "impostor")
    shutil.rmtree(root / "submitted" / "bob")
    shutil.rmtree(root / "submitted" / "cy")
    solved = _solved_release(root)
    wrong = replace_solution(solved, "bigram_counts", WRONG)
    files = {
        "ivy": save(_impostor(solved), root / "submitted" / "ivy" / LAB / f"{LAB}.ipynb"),
        "max": save(_impostor(wrong), root / "submitted" / "max" / LAB / f"{LAB}.ipynb"),
    }
    before = {name: path.read_bytes() for name, path in files.items()}
    jobs_root = _fresh(root, "impostor-jobs")
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "autograde", LAB, "--force"],
        cwd=root, env={**os.environ, **_env(root)}, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    assert "Traceback" not in log and "has changed" not in log, log
    for student in ("ivy", "max"):
        (line,) = [line for line in log.splitlines() if "test cell of exercise" in line and
                   f"{student}/{LAB}: repaired:" in line]  # fmt: skip
        assert "'bigram_counts' was changed" in line and "original test cell" in line, line
    assert sum("repaired:" in line for line in log.splitlines()) == 2, log
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        got = {
            student: {g.name: (g.auto_score, g.needs_manual_grade) for g in sub.grades}
            for student in ("ada", "ivy", "max")
            for sub in [gb.find_submission_notebook(LAB, LAB, student)]
        }
    full = {"test_pick_device": (1, False), "test_bigram_counts": (2, False)}
    assert got["ivy"] == full and got["ada"] == full, got
    assert got["max"] == {"test_pick_device": (1, False), "test_bigram_counts": (0, False)}, got
    graded = load(root / "autograded" / "ivy" / LAB / f"{LAB}.ipynb")
    (test,) = [c for c in graded["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id")
               == "test_bigram_counts"]  # fmt: skip
    assert "BEGIN HIDDEN TESTS" in "".join(test["source"])  # the hidden tests ran too
    assert not [c for c in graded["cells"] if c.get("id") == "my-own-cell"]

    done = run_cli("autograde", LAB, "--jobs", "2", cwd=jobs_root, env=_env(jobs_root))
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert re.search(r"ivy: 3/3 ", out) and re.search(r"max: 1/3 ", out), out
    for student in ("ivy", "max"):
        (line,) = [line for line in out.splitlines() if line.strip().startswith(f"{student}: note")]
        assert "test cell of exercise 'bigram_counts' was changed" in line, out
        assert "original test cell" in line, out
    assert "ada: note" not in out, out
    for name, path in files.items():
        assert path.read_bytes() == before[name]
        assert (jobs_root / path.relative_to(root)).read_bytes() == before[name]
