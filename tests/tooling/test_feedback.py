"""The feedback page's preparation (course_utils.tooling.feedback) on a made-up notebook: the
dependency note, hidden tests removed, the grader's imports shown as written, tracebacks cut
to the learner's frames. No kernel, no nbgrader run: milliseconds. (A generated page is read
in test_autograde.py.)"""

from __future__ import annotations

from nbformat.v4 import new_code_cell, new_notebook, new_output

from course_utils.tooling.feedback import CourseFeedback, learner_traceback


def _test_cell(grade_id, exercise, number, uses, score, points, source, outputs=()):
    cell = new_code_cell(source, outputs=list(outputs))
    cell.metadata["nbgrader"] = {
        "grade": True, "solution": False, "locked": True, "grade_id": grade_id,
        "points": points, "score": score,
    }  # fmt: skip
    cell.metadata["course"] = {"exercise": exercise, "number": number, "uses": uses,
                               "hint": f"hint for {exercise}"}  # fmt: skip
    return cell


def _error(name, value, frames):
    traceback = ["---", "header", *frames, f"{name}: {value}"]
    return new_output("error", ename=name, evalue=value, traceback=traceback)


def test_summary_names_exercises_points_messages_hints_and_the_dependency_note():
    hidden = (
        "(check_true,) = __course_checks__('check_true')  # the grader's own checks\n"
        "check_true(mean_pool(x) is not None)\n"
        "### BEGIN HIDDEN TESTS\nsecret_case = 42\n### END HIDDEN TESTS\n"
    )
    nb = new_notebook(
        cells=[
            _test_cell("test_mean_pool", "mean_pool", 3, {}, 0, 2, "check_true(False)",
                       [_error("CheckFailed", "mean_pool(x): expected 1.0, got 2.0", [])]),
            _test_cell("test_classifier", "classifier", 4, {"mean_pool": 3}, 0, 3, hidden,
                       [_error("CheckFailed", "classifier(x): wrong shape",
                               ["Cell In[9], line 2 (the test cell)",
                                "File /x/site-packages/torch/nn/functional.py, line 5",
                                "Cell In[7], line 4, in classifier",
                                "File /tmp/course-kernel-1/lib/course_utils/checks.py, line 9"])]),
            _test_cell("test_ok", "ok", 5, {}, 1, 1, "print('✓')"),
        ]
    )  # fmt: skip
    nb.metadata["course_repairs"] = ["cell 9 ('test_ok') had its grading settings edited"]
    nb, resources = CourseFeedback().preprocess(nb, {})
    assert resources["course_feedback"]["repairs"] == nb.metadata["course_repairs"]
    items = resources["course_feedback"]["exercises"]
    assert [(i["number"], i["name"], i["score"], i["max_score"], i["passed"]) for i in items] == [
        (3, "mean_pool", 0, 2, False),
        (4, "classifier", 0, 3, False),
        (5, "ok", 1, 1, True),
    ]
    assert items[0]["messages"] == ["mean_pool(x): expected 1.0, got 2.0"]
    assert items[1]["hint"] == "hint for classifier"
    assert items[1]["notes"] == [
        "This uses your `mean_pool` from exercise 3, whose checks fail: fix that first."
    ]
    assert items[0]["notes"] == [] and items[2]["messages"] == []
    source = nb.cells[1].source
    assert "secret_case" not in source and "BEGIN HIDDEN" not in source
    assert "# (hidden tests: run by the grader, not shown)" in source
    assert source.startswith("from course_utils.checks import check_true\n")
    frames = nb.cells[1].outputs[0]["traceback"]
    assert frames == ["---", "header", "Cell In[7], line 4, in classifier",
                      "CheckFailed: classifier(x): wrong shape"]  # fmt: skip


def test_a_traceback_of_an_exercise_cell_keeps_its_own_frame():
    frames = ["---", "header", "Cell In[4], line 2", "File /a/site-packages/x.py", "E: v"]
    assert learner_traceback(frames, test_cell=False) == ["---", "header", "Cell In[4], line 2",
                                                          "E: v"]  # fmt: skip
