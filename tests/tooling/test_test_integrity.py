"""Test cells cannot be gamed through the kernel's namespace (issue 21).

A test cell runs after the learner's cells, in the same kernel: any name it takes from there
(a check imported by an earlier cell, a tolerance set above) may have been replaced. The build
refuses a test cell that reads a name it does not bind, except the exercises' own functions
and classes, which are what it tests.
"""

from __future__ import annotations

import pytest

from course_utils.tooling import authoring

EXERCISE = (
    '# %% exercise="double"\n'
    "def double(x):\n"
    "    ### BEGIN SOLUTION\n"
    "    return 2 * x\n"
    "    ### END SOLUTION\n\n"
)


def build(tmp_path, cells: str):
    source = tmp_path / "lab.py"
    source.write_text("# %% [markdown]\n# # Title\n\n" + cells, encoding="utf-8")
    return authoring.build_notebook(source)


def test_a_test_cell_that_binds_what_it_reads_builds(tmp_path):
    cells = EXERCISE + (
        '# %% test="double" points=1 hint="h"\n'
        "import torch\n\n"
        "from course_utils.checks import check_equal\n\n"
        "cases = [x for x in range(3)]\n"
        "for case in cases:\n"
        "    check_equal(double(case), case + case, name=f'double({case})')\n"
        "with open('/dev/null') as handle:\n"
        "    handle.read()\n"
        "try:\n"
        "    torch.tensor(1)\n"
        "except ValueError as error:\n"
        "    print(error)\n"
        "print(sorted(map(lambda v: double(v), cases)))\n"
    )
    nb = build(tmp_path, cells)
    assert any("check_equal(double(case)" in "".join(c.source) for c in nb.cells)


@pytest.mark.parametrize(
    "cells, names",
    [
        # check_true came from an earlier cell: the learner's `def check_true` replaces it.
        (
            EXERCISE + '# %% test="double" points=1 hint="h"\ncheck_true(double(1) == 2, "x")\n',
            "check_true",
        ),
        # A tolerance set by a locked cell above.
        (
            "# %%\nTOL = 1e-6\n\n" + EXERCISE + '# %% test="double" points=1 hint="h"\n'
            "from course_utils.checks import check_true\n\n"
            "check_true(abs(double(0.5) - 1) < TOL, 'x')\n",
            "TOL",
        ),
        # A name read inside a function or comprehension of the test counts too.
        (
            EXERCISE + '# %% test="double" points=1 hint="h"\n'
            "def reference(v):\n"
            "    return torch.tensor(v) * 2\n\n\n"
            "print([reference(v) for v in range(2)])\n",
            "torch",
        ),
        # torch imported by the exercise cell is the learner's, not the test's.
        (
            '# %% exercise="double"\nimport torch\n\n\ndef double(x):\n'
            "    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\n"
            '# %% test="double" points=1 hint="h"\nprint(double(torch.ones(1)))\n',
            "torch",
        ),
    ],
    ids=["earlier-import", "locked-constant", "inside-function", "exercise-import"],
)
def test_the_build_refuses_a_test_cell_that_reads_a_name_it_does_not_bind(tmp_path, cells, names):
    with pytest.raises(authoring.AuthoringError, match=f"reads {names} without binding"):
        build(tmp_path, cells)


def test_free_names_follows_python_scoping():
    source = (
        "import torch as t\n"
        "x = 1\n"
        "def f(a):\n"
        "    return a + x + y + t.ones(1)\n"
        "class C:\n"
        "    z = w\n"
        "print([i * k for i in range(3)], f, C, len)\n"
    )
    assert authoring.free_names(source) == {"y", "w", "k"}


# A wrong bigram_counts that also empties the ids it was given: a test that counted the
# expected pairs from those ids after the call would agree with it (issue 21).
ZEROING_BIGRAMS = '''import torch


def bigram_counts(ids, vocab_size):
    """(V, V) counts of consecutive pairs."""
    ids.zero_()
    counts = torch.zeros(vocab_size, vocab_size, dtype=torch.long)
    counts[0, 0] = max(len(ids) - 1, 0)
    return counts
'''


def test_a_wrong_function_that_zeroes_its_input_scores_zero(tmp_path):
    from helpers import load, replace_solution, save, solution_path

    from course_utils.tooling.grading import grade

    lab = "00_start_here"
    nb = replace_solution(load(solution_path(lab)), "bigram_counts", ZEROING_BIGRAMS)
    report = grade(save(nb, tmp_path / f"{lab}.ipynb"), lab=lab, progress=lambda _: None)
    results = {t.grade_id: t for t in report.tests}
    assert results["test_pick_device"].passed  # the honest exercise keeps its points
    bigram = results["test_bigram_counts"]
    assert bigram.score == 0, bigram
    assert "changed its input in place" in bigram.message


def test_the_guard_rewrites_only_calls_of_the_learners_code():
    from course_utils.tooling.call_guard import rewrite_calls

    source = (
        "import torch\n"
        "from course_utils.checks import check_tensor\n"
        "mha = MultiHeadAttention(8, 2)\n"
        "ref = torch.nn.Linear(2, 2)\n"
        'x = torch.ones(2)  # "✓" before the call keeps its bytes\n'
        'check_tensor(mha(x), ref(x), name="é"); print(mean_pool(x, None))\n'
    )
    rewritten = rewrite_calls(source)
    assert "__course_call__(MultiHeadAttention)(8, 2)" in rewritten
    assert 'check_tensor(__course_call__(mha)(x), ref(x), name="é")' in rewritten
    assert "print(__course_call__(mean_pool)(x, None))" in rewritten
    assert rewritten.count("__course_call__") == 3
    assert len(rewritten.splitlines()) == len(source.splitlines())


def test_the_guard_fails_and_undoes_a_change_to_an_input():
    import builtins

    import torch

    from course_utils.tooling import call_guard

    had = getattr(builtins, call_guard.NAME, None)
    call_guard.install()
    try:
        guard = getattr(builtins, call_guard.NAME)

        def zeroing(x, rows):
            x.zero_()
            rows.append(1)
            return x

        x, rows = torch.arange(3.0), [1, 2]
        try:
            guard(zeroing)(x, rows)
        except AssertionError as error:
            assert "zeroing changed its input in place" in str(error)
        else:
            raise AssertionError("the guard let a change to the inputs pass")
        assert x.tolist() == [0.0, 1.0, 2.0] and rows == [1, 2]  # undone
        nan = torch.tensor([float("nan"), 1.0])
        assert guard(lambda t: t * 2)(nan)[1] == 2  # NaN in an input is not a change

        model, opt = torch.nn.Linear(2, 1), None
        opt = torch.optim.SGD(model.parameters(), lr=1.0)

        def step(model, optimizer, batch):
            model(batch).sum().backward()
            optimizer.step()

        guard(step)(model, opt, torch.ones(1, 2))  # a training step may change the model
    finally:
        if had is None:
            delattr(builtins, call_guard.NAME)
        else:
            setattr(builtins, call_guard.NAME, had)
