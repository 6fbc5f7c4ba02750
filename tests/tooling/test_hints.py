"""Hints in a real kernel: nothing for an untouched placeholder, a nudge on the first real
failure, the detailed hint when the test fails again or when the learner asks, and
``ready()`` waiting until the exercise's visible test has passed in this kernel.

The notebook is lab 00's own ``bigram_counts`` test cell, run after learner-style exercise
cells (untouched, wrong, right); about 5 s, most of it the kernel's start.
"""

from __future__ import annotations

import json

import helpers
import nbformat
import pytest

from course_utils.exercises import lab_hints, placeholder

LAB = "00_start_here"
WRONG = (
    "import torch\n\ndef bigram_counts(ids, vocab_size):\n"
    "    return torch.zeros(vocab_size, vocab_size, dtype=torch.long)\n"
)


def _cell(nb: dict, grade_id: str) -> str:
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            return "".join(cell["source"])
    raise KeyError(grade_id)


def _text(cell) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        elif output.get("output_type") == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "".join(parts)


@pytest.fixture(scope="module")
def run():
    from nbclient import NotebookClient

    from course_utils.tooling.steady_kernel import SteadyKernelManager

    student = helpers.load(helpers.student_path(LAB))
    solution = helpers.load(helpers.solution_path(LAB))
    test = _cell(student, "test_bigram_counts")
    untouched = "import torch\n\n" + _cell(student, "bigram_counts")
    lines = _cell(solution, "bigram_counts").splitlines()
    right = "import torch\n\n" + "\n".join(x for x in lines if "### " not in x)
    sources = [
        untouched,  # 0
        test,  # 1: untouched -> no hint
        "import course_utils\nprint(course_utils.ready('bigram_counts'))",  # 2
        WRONG,  # 3
        "print(course_utils.ready('bigram_counts'))",  # 4: finished, not tested
        test,  # 5: first real failure -> nudge
        test,  # 6: again -> detailed hint
        "course_utils.hint(2)",  # 7
        'course_utils.hint("bigram_counts")',  # 8
        "print(course_utils.ready('bigram_counts'))",  # 9: failed -> False
        right,  # 10
        "print(course_utils.ready('bigram_counts'))",  # 11: redefined, untested -> False
        test,  # 12: passes
        "print(course_utils.ready('bigram_counts'))",  # 13: True
        WRONG,  # 14: redefined after passing -> untested again
        "print(course_utils.ready('bigram_counts'))",  # 15
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    client = NotebookClient(
        nb,
        timeout=60,
        kernel_name="python3",
        allow_errors=True,
        kernel_manager_class=SteadyKernelManager,
    )
    return client.execute().cells


def test_untouched_placeholder_shows_no_hint(run):
    shown = _text(run[1])
    assert "NotImplementedError" in shown and placeholder(2, "bigram_counts") in shown
    assert "Hint" not in shown


def test_first_failure_nudges_and_a_second_shows_the_hint(run):
    info = lab_hints(LAB)["tests"]["test_bigram_counts"]
    first, second = _text(run[5]), _text(run[6])
    assert "CheckFailed" in first and f"Hint: {info['nudge']}" in first
    assert info["hint"] not in first, "the first failure hands over the code-level hint"
    assert "course_utils.hint(2)" in first, "the nudge does not say how to ask for more"
    assert f"Hint: {info['hint']}" in second


def test_hint_on_request_by_number_or_name(run):
    info = lab_hints(LAB)["tests"]["test_bigram_counts"]
    for index in (7, 8):
        shown = _text(run[index])
        assert "Hint for exercise 2 (bigram_counts)" in shown and info["hint"] in shown


def test_ready_waits_until_the_visible_test_passed(run):
    assert _text(run[2]).strip().splitlines()[-1] == "False"
    assert "Finish exercise 2" in _text(run[2])
    for index in (4, 9, 11, 15):
        lines = _text(run[index]).strip().splitlines()
        assert lines[-1] == "False", (index, lines)
        assert lines[0].startswith("⏳ Exercise 2 (bigram_counts, `bigram_counts`) has not passed")
    assert "✓ bigram_counts" in _text(run[12])
    assert _text(run[13]).strip() == "True"


def test_hint_outside_a_lab_says_what_to_pass(capsys, monkeypatch, tmp_path):
    from course_utils import exercises

    monkeypatch.setitem(exercises._seen, "lab", None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    exercises.hint(1)
    assert 'pass lab="..."' in capsys.readouterr().out
    exercises.hint(99, lab=LAB)
    out = capsys.readouterr().out
    assert "has no exercise 99" in out and "1 (pick_device)" in out


def test_no_hint_text_in_any_student_notebook():
    """Hints and nudges live in course_utils/hints/, never in what a learner reads first."""
    for lab in helpers.LABS:
        path = helpers.student_path(lab)
        if not path.is_file():
            continue
        texts = [
            t
            for test in lab_hints(lab)["tests"].values()
            for t in test.values()
            if isinstance(t, str) and len(t) > 20
        ]
        assert texts, f"{lab}: no hint file; run `python -m course_utils build`"
        for cell in helpers.load(path)["cells"]:
            source, meta = "".join(cell["source"]), json.dumps(cell["metadata"])
            for text in texts:
                assert text not in source and text not in meta, f"{lab}: {text!r} is in a cell"
