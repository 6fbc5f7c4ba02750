"""The learner-experience rules (CONTRIBUTING.md, "Rules for new labs"), checked on every lab.

Every lab in ``course_utils.config.LABS`` whose notebooks exist is checked, so a new lab is
covered as soon as it is built and released:

- each exercise of the released notebook raises its named placeholder, numbered in order;
- each test cell starts with the ``begin_test`` line the build writes from its header (the
  hints themselves are in ``course_utils/hints/<lab>.json``, see tests/tooling/test_hints.py);
- the untouched student notebook, run top to bottom in the ``smoke`` profile, fails only in
  exercise and test cells (demo cells wait with ``course_utils.ready``), and no failing test
  cell shows a hint: nothing was tried yet;
- the solution notebook, run in ``smoke``, has no errors, no stray values at the ends of cells
  (``True``, ``Text(0, 0.5, ...)``) and no progress bar whose saved text stopped at ``0/N``.

The notebooks run once per session, several at a time, in fresh kernels
(``helpers.executed_in_smoke``, shared with tests/tooling/test_environments.py's widget test).
"""

from __future__ import annotations

import re

import helpers
import pytest

from course_utils.exercises import placeholder
from course_utils.tooling.authoring import begin_test_line

LABS = [lab for lab in helpers.LABS if helpers.solution_path(lab).is_file()]
STUCK_BAR = re.compile(r"\b0/\d+\b")


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _kind(cell) -> str:
    meta = _meta(cell)
    if cell.get("cell_type") != "code":
        return cell.get("cell_type", "")
    if meta.get("grade"):
        return "test"
    if meta.get("solution"):
        return "exercise"
    return "code"


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}"
    return str(output.get("data", {}).get("text/plain", ""))


@pytest.mark.parametrize("lab", LABS)
def test_exercises_raise_their_named_placeholder(lab):
    nb = helpers.load(helpers.student_path(lab))
    exercises = [c for c in nb["cells"] if _kind(c) == "exercise"]
    assert exercises, f"{lab} has no exercises"
    for number, cell in enumerate(exercises, start=1):
        source = "".join(cell["source"])
        expected = f'raise NotImplementedError("{placeholder(number, _meta(cell)["grade_id"])}")'
        assert expected in source, f"{lab}, exercise {number}: no named placeholder:\n{source}"
        assert "raise NotImplementedError()" not in source


@pytest.mark.parametrize("lab", LABS)
def test_test_cells_start_with_their_hint(lab):
    for path in (helpers.solution_path(lab), helpers.student_path(lab)):
        for cell in helpers.load(path)["cells"]:
            if _kind(cell) != "test":
                continue
            course = cell["metadata"]["course"]
            first = begin_test_line(_meta(cell)["grade_id"], lab, course["number"], course["uses"])
            assert "".join(cell["source"]).startswith(first), (
                f"{path.name}, {_meta(cell)['grade_id']}: the test cell does not start with "
                "its begin_test line; rebuild and release the lab"
            )


@pytest.mark.parametrize("lab", LABS)
def test_untouched_notebook_fails_only_where_there_is_work(lab):
    nb = helpers.executed_in_smoke()[(lab, "student")]
    for index, cell in enumerate(nb.cells):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        kind = _kind(cell)
        if kind == "test":
            assert errors, f"{lab}, cell {index}: a test passes in the untouched notebook"
            shown = "".join(_text(o) for o in cell.outputs)
            assert "Hint" not in shown, f"{lab}, cell {index}: an untouched exercise shows a hint"
        elif kind != "exercise":
            assert not errors, (
                f"{lab}, cell {index} is not an exercise or a test but fails in the untouched "
                f"notebook: {_text(errors[0])}\n(start it with `if course_utils.ready(...):`)\n"
                f"{cell.source[:300]}"
            )


@pytest.mark.parametrize("lab", LABS)
def test_solution_has_no_stray_outputs(lab):
    nb = helpers.executed_in_smoke()[(lab, "solution")]
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            first = cell.source.splitlines()[0][:60] if cell.source else ""
            where = f"{lab}, cell {index} ({first})"
            assert output.get("output_type") != "error", f"{where}: {_text(output)}"
            assert "⏳" not in _text(output), (
                f"{where}: a demo cell waited in the solution notebook ({_text(output)!r}): "
                "its exercise's visible test did not pass before it, or ready() names the "
                "wrong function"
            )
            assert output.get("output_type") != "execute_result", (
                f"{where} ends with a bare value, shown as {_text(output)[:80]!r}: end the cell "
                "with a statement (print(...), plt.show(), or `;` after a plot call)"
            )
            plain = _text(output) if output.get("output_type") == "display_data" else ""
            assert not ("training" in plain and STUCK_BAR.search(plain)), (
                f"{where}: a progress bar's saved text reads {plain!r}; close the bar"
            )


def test_the_build_finds_which_earlier_exercises_a_test_relies_on(tmp_path):
    from course_utils.tooling.authoring import build_notebook

    source = tmp_path / "00_start_here.py"  # any lab name: the build reads it for the title
    source.write_text(
        '''# %% [markdown]
# # A lab

# %% exercise="norm"
def norm(x):
    """x -> x."""
    ### BEGIN SOLUTION
    return x
    ### END SOLUTION


# %% test="norm" points=1 hint="Return x."
print("ok")


# %%
class Norm:
    def __call__(self, x):
        return norm(x)


# %% exercise="block"
def block(x):
    """x -> x."""
    ### BEGIN SOLUTION
    return Norm()(x)
    ### END SOLUTION


# %% test="block" points=1 hint='Use "Norm".'
print(block(1))
''',
        encoding="utf-8",
    )
    nb = build_notebook(source)
    tests = {c.id: c for c in nb.cells if c.metadata.get("course")}
    assert tests["test_norm"].metadata["course"]["uses"] == {}
    assert tests["test_block"].metadata["course"] == {
        "exercise": "block",
        "number": 2,
        "hint": 'Use "Norm".',
        "nudge": "Re-read what `block` must do (x -> x) and compare the expected and the "
        "returned values above.",  # no nudge= in the header: one from the docstring
        "uses": {"norm": 1},  # through the locked Norm class
    }
    assert tests["test_block"].source.startswith(
        "from course_utils.checks import begin_test\n\n"
        'begin_test("test_block", lab="00_start_here", exercise=2, uses={"norm": 1})\n'
    )
