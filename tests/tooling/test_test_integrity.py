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
    # ref may hold an object of a learner's class: guarded if it does, when it runs
    guarded_ref = "__course_call__(ref, MultiHeadAttention, mean_pool)(x)"
    assert f'check_tensor(__course_call__(mha)(x), {guarded_ref}, name="é")' in rewritten
    assert "print(__course_call__(mean_pool)(x, None))" in rewritten
    assert rewritten.count("__course_call__") == 4
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
            assert "zeroing changed its input in place (argument 1, argument 2)" in str(error)
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
        # With classes given, only an object of one of them is guarded.
        assert guard(model, torch.nn.Embedding) is model
        assert guard(model, torch.nn.Linear, len) is not model
    finally:
        if had is None:
            delattr(builtins, call_guard.NAME)
        else:
            setattr(builtins, call_guard.NAME, had)


# --------------------------------------------------------------------------------------------
# Hidden cases drawn from the course's secret
# --------------------------------------------------------------------------------------------

# The public hidden test of lab 00's bigram_counts draws its cases like this; a learner who
# read it could hand in a table of the answers instead of a solution.
PUBLIC_CASES = [(500, 7), (2, 4), (1, 5), (0, 3), (50, 1)]


def _answer_table_solution() -> str:
    import torch

    table = {}
    generator = torch.Generator().manual_seed(1234)
    cases = [([0, 1, 1, 2, 0, 1], 3)]  # the visible case
    for n, v in PUBLIC_CASES:
        cases.append((torch.randint(0, v, (n,), generator=generator).tolist(), v))
    for ids, v in cases:
        counts = torch.zeros(v, v, dtype=torch.long)
        for a, b in zip(ids[:-1], ids[1:]):
            counts[a, b] += 1
        table[(hash(tuple(ids)), v)] = counts.tolist()
    return (
        "import torch\n\n"
        f"ANSWERS = {table!r}\n\n\n"
        "def bigram_counts(ids, vocab_size):\n"
        '    """A table of the public cases, not a solution."""\n'
        "    key = (hash(tuple(ids.tolist())), vocab_size)\n"
        "    return torch.tensor(ANSWERS.get(key, [[0] * vocab_size] * vocab_size))\n"
    )


def _grade(path, secret: str | None):
    import os

    from course_utils.tooling.grading import grade

    old = os.environ.pop("COURSE_GRADING_SECRET", None)
    if secret:
        os.environ["COURSE_GRADING_SECRET"] = secret
    try:
        report = grade(path, lab="00_start_here", progress=lambda _: None)
    finally:
        os.environ.pop("COURSE_GRADING_SECRET", None)
        if old is not None:
            os.environ["COURSE_GRADING_SECRET"] = old
    return {t.grade_id: t.passed for t in report.tests}, report


@pytest.mark.slow
def test_hidden_cases_come_from_the_courses_secret(tmp_path):
    from helpers import load, replace_solution, save, solution_path

    lab = "00_start_here"
    table = replace_solution(load(solution_path(lab)), "bigram_counts", _answer_table_solution())
    table_path = save(table, tmp_path / "table" / f"{lab}.ipynb")
    # Without a secret the public seeds are graded: the table passes (so it is a real table).
    passed, _ = _grade(table_path, None)
    assert passed["test_bigram_counts"], passed
    # With a secret the cases are others: the table fails, a correct solution passes with
    # either of two secrets.
    passed, report = _grade(table_path, "first secret of the term")
    assert not passed["test_bigram_counts"], report.render()
    for secret in ("first secret of the term", "another secret"):
        passed, report = _grade(solution_path(lab), secret)
        assert all(passed.values()), report.render()


def test_hidden_seeds_follow_the_key_and_the_kernel_never_sees_the_secret():
    import subprocess
    import sys

    from course_utils.tooling.safeguard import grading_key

    script = (
        "import os\n"
        "from course_utils.tooling.trusted import install\n"
        "install()\n"
        "assert 'COURSE_GRADING_KEY' not in os.environ\n"
        "seed, gen = __course_checks__('hidden_seed', 'hidden_generator')\n"
        "print(seed('test_x', 7), seed('test_y', 7), int(gen('test_x', 3).initial_seed()))\n"
    )

    def seeds(key: str | None) -> list[int]:
        env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("COURSE_")}
        if key is not None:
            env["COURSE_GRADING_KEY"] = key
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        return [int(x) for x in out.stdout.split()]

    assert seeds(None) == [7, 7, 3]  # no secret: the tests' own seeds
    a, b = grading_key("secret A", "00_start_here"), grading_key("secret B", "00_start_here")
    assert a != b and grading_key("secret A", "01_tokens_and_embeddings") != a
    assert "secret A" not in a
    first, second = seeds(a), seeds(b)
    assert first == seeds(a)  # the same secret gives the same cases
    assert first != second and first[0] != first[1] and 7 not in first
    assert grading_key("", "00_start_here") == grading_key(
        __import__("os").environ.get("COURSE_GRADING_SECRET", ""), "00_start_here"
    )


# --------------------------------------------------------------------------------------------
# What a class's students receive
# --------------------------------------------------------------------------------------------


def test_student_copy_leaves_out_solutions_and_hidden_tests(tmp_path):
    from helpers import ROOT, run_cli

    dest = tmp_path / "course"
    result = run_cli("student-copy", str(dest))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (dest / "course_utils" / "checks.py").is_file() and (dest / "README.md").is_file()
    for folder in ("tests", "benchmarks", ".git"):
        assert not (dest / folder).exists(), folder
    assert not list((dest / "solutions").rglob("*.py"))
    for notebook in (dest / "solutions").rglob("*.ipynb"):
        text = notebook.read_text(encoding="utf-8")
        assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text, notebook
        released = ROOT / "notebooks" / notebook.parent.name / notebook.name
        assert text == released.read_text(encoding="utf-8")
    again = run_cli("student-copy", str(dest))  # never over what is there
    assert again.returncode == 2 and "not empty" in again.stderr


@pytest.mark.slow
def test_grade_in_a_student_copy_grades_the_visible_tests(tmp_path):
    from helpers import load, replace_solution, run_cli, save, student_path

    from course_utils.tooling.grading import grade

    dest = tmp_path / "course"
    assert run_cli("student-copy", str(dest)).returncode == 0
    lab = "00_start_here"
    nb = load(student_path(lab))
    solved = replace_solution(
        nb,
        "bigram_counts",
        "import torch\n\n\ndef bigram_counts(ids, vocab_size):\n"
        "    pairs = ids[:-1] * vocab_size + ids[1:]\n"
        "    counts = torch.bincount(pairs, minlength=vocab_size * vocab_size)\n"
        "    return counts.reshape(vocab_size, vocab_size)\n",
    )
    path = save(solved, dest / "notebooks" / lab / "mine.ipynb")
    report = grade(path, lab=lab, root=dest, progress=lambda _: None)
    passed = {t.grade_id: t.passed for t in report.tests}
    assert passed["test_bigram_counts"] and not passed["test_pick_device"], report.render()


def test_a_learner_function_that_reads_a_tests_variable_is_flagged():
    from course_utils.tooling.call_guard import test_variable_findings, test_variables

    tests = [
        "import torch\nexpected = torch.ones(2)\nfor case in range(2):\n    pass\n"
        "def reference(x):\n    return x\n"
    ]
    others = ["import torch\nids = torch.arange(3)\n"]
    names = test_variables(tests, others)
    assert names == {"expected", "case", "reference"}  # not torch, not the demo's ids
    cheat = "def mean_pool(h, m=None):\n    expected.zero_()\n    return h.mean(1) * 0\n"
    (finding,) = test_variable_findings(cheat, names)
    assert finding["line"] == 2 and "`expected`" in finding["construct"]
    honest = (
        "expected = 3\n"  # the top level may use any name
        "def mean_pool(h, m=None, case=None):\n"
        "    expected = h.mean(1)\n"  # a local of the same name is the learner's own
        "    return expected + ids.sum() * 0\n"
    )
    assert test_variable_findings(honest, names) == []


def test_the_grading_kernels_launcher_drops_the_secret():
    import os
    import subprocess
    import sys

    env = dict(os.environ, COURSE_GRADING_SECRET="do not tell", COURSE_KERNEL_LOG="1")
    show = "import os; print(repr(os.environ.get('COURSE_GRADING_SECRET')))"
    launcher = [sys.executable, "-m", "course_utils.tooling.kernel_limits", "0", "smoke"]
    out = subprocess.run(
        [*launcher, "--", sys.executable, "-c", show],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "None"


# --------------------------------------------------------------------------------------------
# References before the learner's call, in the learner's own kernel (no call guard)
# --------------------------------------------------------------------------------------------

# Test parts (lab, test, "visible" or "hidden"; "*" for both) that no vandal can be caught by,
# and why. Each stays listed only while it is true: the test fails on an entry that a vandal
# now trips (remove it then).
NOT_VANDALISABLE = {
    # Nothing the function is given can be changed in place: numbers, strings, none at all.
    ("00_start_here", "test_pick_device", "*"): "no arguments but a device name (a str)",
    ("01_tokens_and_embeddings", "test_sinusoidal_positions", "*"): "two ints",
    ("02_attention", "test_causal_mask", "*"): "one int",
    ("03_transformer_block", "test_block_params", "*"): "ints and a config, no tensors",
    ("03_transformer_block", "test_model_params", "*"): "ints and a config, no tensors",
    ("09_modern_decoder", "test_lora_2", "*"): "merge() takes no input (its weights are "
    "cloned and the expected weight computed before the call)",
    ("07_decoder_takeover", "test_flops_per_token", "*"): "ints",
    ("07_decoder_takeover", "test_prompts", "*"): "strings",
    ("08_training_your_own", "test_training_flops", "*"): "numbers",
    # Something can be changed, but what the checks compare does not depend on it.
    ("01_tokens_and_embeddings", "test_char_tokenizer_2", "*"): (
        "only that encode raises ValueError naming the unknown character: zeroing or "
        "reordering the vocabulary's ids does not change that"
    ),
    ("06_encoder_decoder", "test_beam", "visible"): (
        "the stand-in model is a table that ignores the source; the expected tokens and "
        "scores are constants written in the test"
    ),
}


def _vandal_audit():
    import importlib.util

    from helpers import ROOT

    spec = importlib.util.spec_from_file_location(
        "mutation_audit", ROOT / "benchmarks" / "mutation_audit.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lab_names():
    from course_utils import config

    return list(config.LAB_NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("lab", _lab_names())
def test_every_test_part_fails_a_function_that_changes_its_inputs(lab):
    """Issue 21: a wrong function that changes its input in place and answers for the
    changed input must not pass, in the learner's own notebook (no call guard): each test
    cell's visible part, and its hidden part, computes its references before the call (or
    from what the call never sees) or checks that the input is unchanged.

    The vandals (benchmarks/mutation_audit.py): the solution behind a wrapper that first
    zeroes, reverses or doubles every tensor, array, list and module it was given, then
    answers for what it made of them. A part passes when some vandal fails one of its checks;
    the parts in NOT_VANDALISABLE cannot be told apart by any input change."""
    audit = _vandal_audit()
    entries = audit.vandal_audit(lab)
    assert entries, f"{lab} has no test cells"
    problems, stale = [], []
    for entry in entries:
        for part in ("visible", "hidden"):
            if part not in entry:
                continue
            verdict = audit.verdict(entry[part])
            exempt = any((lab, entry["test"], p) in NOT_VANDALISABLE for p in (part, "*"))
            if verdict == "caught" and exempt:
                stale.append(f"{entry['test']} ({part}) is now caught: remove its exemption")
            elif verdict == "untouched" and not exempt:
                problems.append(f"{entry['test']} ({part}): no input to change; list why")
            elif verdict.startswith("NOT") and not exempt:
                problems.append(f"{entry['test']} ({part}): {verdict}")
    assert not problems, "\n".join(problems)
    assert not stale, "\n".join(stale)
