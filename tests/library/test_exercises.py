"""course_utils.exercises: named placeholders, and ready() for demo cells."""

from __future__ import annotations

import pytest

import course_utils
from course_utils.exercises import PLACEHOLDER_RE, placeholder, ready, unfinished


def _namespace(code: str) -> dict:
    ns: dict = {}
    exec(code, ns)  # the notebook's namespace, as a demo cell sees it
    return ns


UNFINISHED = f"""
def merge(ids, pair, new_id):
    # YOUR CODE HERE
    raise NotImplementedError("{placeholder(3, "merge")}")
"""
FINISHED = """
def merge(ids, pair, new_id):
    return [new_id if tuple(ids[i:i + 2]) == pair else x for i, x in enumerate(ids)]
"""


def test_placeholder_names_the_exercise_and_matches_its_pattern():
    message = placeholder(3, "merge")
    assert message == "Exercise 3 (merge): replace this line with your code"
    assert PLACEHOLDER_RE.match(message).groups() == ("3", "merge")
    for bad in ((0, "merge"), (1, "two words"), ("1", "merge")):
        with pytest.raises(ValueError, match="exercise number"):
            placeholder(*bad)


def test_unfinished_sees_functions_methods_and_nested_code():
    assert unfinished(_namespace(UNFINISHED)["merge"]) == (3, "merge")
    assert unfinished(_namespace(FINISHED)["merge"]) is None
    cls = _namespace(
        "class Head:\n    def forward(self, x):\n"
        f"        def inner():\n            raise NotImplementedError('{placeholder(2, 'head')}')\n"
        "        return inner()\n"
    )["Head"]
    assert unfinished(cls) == (2, "head")
    decorated = _namespace("import torch\n@torch.no_grad()\n" + UNFINISHED.lstrip())["merge"]
    assert unfinished(decorated) == (3, "merge")
    assert unfinished(42) is None


def test_ready_prints_one_line_for_an_unfinished_or_missing_exercise(capsys):
    ns = _namespace(UNFINISHED)
    ns["ready"] = ready
    exec("result = ready('merge')", ns)
    assert ns["result"] is False
    assert capsys.readouterr().out.strip() == "⏳ Finish exercise 3 (merge, `merge`) to see this."
    exec("result = ready('encode')", ns)
    assert ns["result"] is False
    assert "`encode` is not defined yet" in capsys.readouterr().out


def test_ready_waits_for_the_visible_test_then_is_silent_and_true(capsys, monkeypatch):
    from course_utils import exercises

    monkeypatch.setattr(exercises, "_tests", {})
    monkeypatch.setitem(exercises._seen, "lab", "01_tokens_and_embeddings")
    ns = _namespace(FINISHED)
    ns["ready"] = course_utils.ready
    exec("result = ready('merge')", ns)  # finished, but its test has not run
    assert ns["result"] is False
    number = exercises.lab_hints("01_tokens_and_embeddings")["exercises"]["merge"]["number"]
    assert capsys.readouterr().out.startswith(
        f"⏳ Exercise {number} (merge, `merge`) has not passed its test yet"
    )
    exercises.record_test("01_tokens_and_embeddings", "merge", "test_merge", False, ns)
    exec("result = ready('merge')", ns)
    assert ns["result"] is False and "has not passed" in capsys.readouterr().out
    exercises.record_test("01_tokens_and_embeddings", "merge", "test_merge", True, ns)
    exec("result = ready('merge')", ns)
    assert ns["result"] is True and capsys.readouterr().out == ""
    exec(FINISHED, ns)  # redefined after its test passed: untested again
    exec("result = ready('merge')", ns)
    assert ns["result"] is False
    # A helper no exercise defines only needs to be defined and finished.
    exec("def helper_of_the_lab(x):\n    return x\nresult = ready('helper_of_the_lab')", ns)
    assert ns["result"] is True


def test_ready_rejects_what_is_not_a_name():
    with pytest.raises(ValueError, match="names of exercise functions as strings"):
        ready()
    with pytest.raises(ValueError, match="names of exercise functions as strings"):
        ready(len)
