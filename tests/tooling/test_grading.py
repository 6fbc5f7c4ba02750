"""Every lab grades as it should, through nbgrader itself and through `course_utils grade`:
solutions get full code marks, untouched student notebooks zero; feedback is generated;
the learner's file is never changed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import LABS, ROOT, load, replace_solution, run_cli, save, solution_path, student_path

from course_utils.tooling.grading import grade

pytestmark = pytest.mark.slow


def _nbgrader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "COURSE_PROFILE": "smoke",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
    }
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("lab", LABS)
def test_instructor_flow_autogrades_and_gives_feedback(lab, tmp_path):
    """nbgrader generate_assignment / autograde / generate_feedback with the course config."""
    shutil.copy2(ROOT / "nbgrader_config.py", tmp_path)
    (tmp_path / "solutions" / lab).mkdir(parents=True)
    shutil.copy2(solution_path(lab), tmp_path / "solutions" / lab)
    assert _nbgrader("generate_assignment", lab, "--force", cwd=tmp_path).returncode == 0
    released = tmp_path / "notebooks" / lab / f"{lab}.ipynb"
    assert released.read_bytes() == student_path(lab).read_bytes()
    for student, notebook in (("ada", solution_path(lab)), ("bob", student_path(lab))):
        target = tmp_path / "submitted" / student / lab / f"{lab}.ipynb"
        target.parent.mkdir(parents=True)
        shutil.copy2(notebook, target)
    result = _nbgrader("autograde", lab, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    result = _nbgrader("generate_feedback", lab, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for student in ("ada", "bob"):
        feedback = tmp_path / "feedback" / student / lab / f"{lab}.html"
        assert feedback.is_file() and "test_" in feedback.read_text()

    # Every cell of the solution ran cleanly in the smoke profile, not only the tests.
    graded = json.loads((tmp_path / "autograded" / "ada" / lab / f"{lab}.ipynb").read_text())
    errors = [
        (i, o.get("ename"), o.get("evalue"))
        for i, c in enumerate(graded["cells"])
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, errors

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        ada = gb.find_submission_notebook(lab, lab, "ada")
        bob = gb.find_submission_notebook(lab, lab, "bob")
        assert ada.max_code_score > 0
        assert ada.code_score == ada.max_code_score, [
            (g.name, g.auto_score) for g in ada.grades if g.auto_score != g.max_score
        ]
        assert bob.code_score == 0
        assert not any(c.auto_comment and "safeguard" in c.auto_comment for c in ada.comments)


@pytest.mark.parametrize("lab", LABS)
def test_grade_reports_full_marks_and_zero(lab):
    digest = hashlib.sha256(student_path(lab).read_bytes()).hexdigest()
    good = grade(solution_path(lab))
    assert good.max_score > 0 and good.score == good.max_score, good.render()
    assert not good.flags, good.render()
    bad = grade(student_path(lab))
    assert bad.score == 0 and bad.max_score == good.max_score, bad.render()
    for test in bad.tests:
        assert not test.passed and test.message.startswith("not done yet"), test
        assert test.hint and test.nudge  # in the JSON report; render() shows neither
    assert "Hint:" not in bad.render(), "an untouched exercise gets a hint"
    assert hashlib.sha256(student_path(lab).read_bytes()).hexdigest() == digest


def test_grade_cli_output_for_a_learner(tmp_path):
    lab = LABS[0]
    folder = tmp_path / lab
    folder.mkdir()
    # One exercise tried and wrong, the others untouched: a nudge for the first only.
    wrong = (
        "import torch\n\ndef bigram_counts(ids, vocab_size):\n"
        "    return torch.zeros(vocab_size, vocab_size, dtype=torch.long)\n"
    )
    save(replace_solution(load(student_path(lab)), "bigram_counts", wrong), folder / f"{lab}.ipynb")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = run_cli("grade", str(folder / f"{lab}.ipynb"))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # nothing written
    assert result.returncode == 0, result.stderr
    from course_utils.exercises import lab_hints

    info = lab_hints(lab)["tests"]["test_bigram_counts"]
    assert "✗ failed" in result.stdout and result.stdout.count("Hint:") == 1, result.stdout
    assert f"Hint: {info['nudge']}" in result.stdout and info["hint"] not in result.stdout
    assert 'course_utils.hint("bigram_counts")' in result.stdout
    assert "Score: 0/" in result.stdout
    result = run_cli("grade", str(student_path(lab).parent), "--json")
    assert result.returncode == 0 and '"score": 0' in result.stdout


def test_grade_uses_the_original_of_an_edited_test_cell_with_new_ids(tmp_path):
    """Issue 21, edited locked test cell: a test cell replaced by ``pass`` whose grade id and
    cell id were both changed in the JSON was graded as a cell the learner added (0/2 and
    "the test wrote an error" for a correct solution). The released test cell is used
    instead: correct keeps full marks, wrong gets zero there; one note says so; the learner's
    file is not changed."""
    lab = LABS[0]
    solved = load(student_path(lab))
    for cell in load(solution_path(lab))["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            solved = replace_solution(solved, meta["grade_id"], cell["source"])
    wrong = "def bigram_counts(ids, vocab_size):\n    return None\n"
    for name, nb, score in (
        ("right", solved, "3/3"),
        ("wrong", replace_solution(solved, "bigram_counts", wrong), "1/3"),
    ):
        for cell in nb["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("grade_id") == "test_bigram_counts":
                cell["source"] = "pass"
                cell["metadata"]["nbgrader"]["grade_id"] = "my_own_test"
                cell["id"] = "my-own-cell"
        path = save(nb, tmp_path / name / f"{lab}.ipynb")
        before = path.read_bytes()
        result = run_cli("grade", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"Score: {score} " in result.stdout, result.stdout
        (note,) = [line for line in result.stdout.splitlines() if line.startswith("Note:")]
        assert "test cell of exercise 'bigram_counts' was changed" in note, result.stdout
        assert "'my_own_test'" in note and "original test cell" in note, note
        assert path.read_bytes() == before


def _cells(nb: dict) -> list:
    """Each cell's id, metadata and source (as text: a restored cell's is joined)."""
    return [(c.get("id"), c["metadata"], "".join(c["source"])) for c in nb["cells"]]


def test_repair_puts_released_test_cells_back_in_place():
    """The released test cells are the truth (issue 21): one missing by grade id is put back
    where it belongs, in place of a cell with grading settings that are not the lab's, or
    before the next released cell when there is none; an exercise cell is never replaced;
    cell ids stay unique; each case is one note."""
    import copy

    from course_utils.tooling.nbgrader_steps import repair

    released = load(student_path(LABS[0]))
    ids = [c["metadata"].get("nbgrader", {}).get("grade_id") for c in released["cells"]]
    test = ids.index("test_bigram_counts")

    deleted = copy.deepcopy(released)
    del deleted["cells"][test]
    (note,) = repair(deleted, released)
    assert _cells(deleted) == _cells(released), note
    assert "'bigram_counts'" in note and "was missing; the original test cell was put back" in note

    no_grade_id = copy.deepcopy(released)
    cell = no_grade_id["cells"][test]
    cell["source"], cell["id"] = "pass", "my-own-cell"
    del cell["metadata"]["nbgrader"]["grade_id"]
    (note,) = repair(no_grade_id, released)
    assert _cells(no_grade_id) == _cells(released), note
    assert f"cell {test + 1}: the test cell of exercise 'bigram_counts' was changed" in note
    assert "grade id 'test_bigram_counts' was removed" in note

    # The test cell gone and the exercise renamed with a new cell id: the learner's code
    # stays (a cell they added), the released test cell goes after it; a cell the learner
    # added with the test cell's id keeps it.
    renamed = copy.deepcopy(released)
    del renamed["cells"][test]
    exercise = renamed["cells"][test - 1]
    exercise["metadata"]["nbgrader"]["grade_id"], exercise["id"] = "mine", "my-cell"
    exercise["source"] = "def bigram_counts(ids, vocab_size):\n    return 1\n"
    added = {"cell_type": "markdown", "id": released["cells"][test]["id"], "metadata": {}}
    renamed["cells"].insert(0, {**added, "source": "my notes"})
    notes = repair(renamed, released)
    assert len(notes) == 2 and "not one of this lab's" in notes[0], notes
    assert "'bigram_counts' ('test_bigram_counts') was missing" in notes[1], notes
    assert renamed["cells"][test]["source"].endswith("return 1\n")
    restored = renamed["cells"][test + 1]
    assert restored["metadata"]["nbgrader"]["grade_id"] == "test_bigram_counts"
    assert restored["id"] == added["id"] + "-restored"
