"""The checks exercise tests use: helpful messages, and no way to pass with a look-alike."""

from __future__ import annotations

import pytest
import torch

from course_utils.checks import (
    CheckFailed,
    check_equal,
    check_raises,
    check_shape,
    check_tensor,
    check_true,
)


def message(func, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as info:
        func(*args, **kwargs)
    assert isinstance(info.value, AssertionError)
    return str(info.value)


def test_check_tensor_passes_within_tolerance():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    check_tensor(x + 1e-7, x)
    masked = torch.tensor([0.5, float("-inf")])
    check_tensor(masked.clone(), masked)  # the same -inf in the same place agrees


@pytest.mark.parametrize(
    "actual, expected, words",
    [
        (torch.ones(2, 3), torch.ones(3, 2), ["wrong shape", "(3, 2)", "(2, 3)"]),
        (torch.ones(2, dtype=torch.float64), torch.ones(2), ["wrong dtype", "float32"]),
        (torch.tensor([1.0, float("nan")]), torch.ones(2), ["NaN", "(1,)"]),
        ([1.0, 2.0], torch.ones(2), ["expected a torch.Tensor", "list"]),
        (
            torch.tensor([1.0, 2.0, 3.5]),
            torch.tensor([1.0, 2.0, 3.0]),
            ["1 of 3 places", "index (2,)", "expected 3", "got 3.5", "rtol"],
        ),
        (torch.tensor([0.0, 1.0]), torch.tensor([0.0, float("-inf")]), ["index (1,)", "-inf"]),
        (
            torch.tensor([[5.0, float("-inf"), 3.0]]),
            torch.tensor([[5.0, 4.0, 3.0]]),
            ["an infinity where a finite value was expected", "(0, 1)", "expected 4", "-inf"],
        ),
    ],
    ids=["shape", "dtype", "nan", "not-a-tensor", "values", "missing-inf", "unexpected-inf"],
)
def test_check_tensor_says_what_is_wrong(actual, expected, words):
    text = message(check_tensor, actual, expected, name="attention(q, k, v)", hint="Look again.")
    assert text.startswith("attention(q, k, v): ")
    assert text.endswith("Hint: Look again.")
    for word in words:
        assert word in text


def test_a_tensor_subclass_cannot_pass():
    class Liar(torch.Tensor):
        def __eq__(self, other):
            return True

    fake = torch.zeros(2).as_subclass(Liar)
    assert "expected a torch.Tensor, got Liar" in message(check_tensor, fake, torch.ones(2))
    assert "expected a torch.Tensor" in message(check_shape, fake, (2,))


def test_check_equal_compares_type_and_structure():
    check_equal([1, [2, "a"]], [1, [2, "a"]])
    check_equal({"a": (1, 2)}, {"a": (1, 2)})

    class Anything:
        def __eq__(self, other):
            return True

    assert "expected a list, got Anything" in message(check_equal, Anything(), [1])
    text = message(check_equal, [1, 3], [1, 2], name="out")
    assert "out: at [1]: expected 2, got 3" in text
    assert "expected: [1, 2]" in text and "got:      [1, 3]" in text  # short lists shown whole
    assert "expected length 2, got 1" in message(check_equal, [1], [1, 2])
    assert "missing ['b']" in message(check_equal, {"a": 1}, {"a": 1, "b": 2})


def test_check_true_and_check_raises():
    check_true(True, "fine")
    check_true(torch.tensor(True), "fine")
    assert message(check_true, 1, "must be exactly True") == "must be exactly True"
    error = check_raises(ValueError, int, "x")
    assert isinstance(error, ValueError)
    assert "nothing was raised" in message(check_raises, ValueError, int, "3")
    assert "it raised TypeError" in message(check_raises, ValueError, len, 3)


def test_check_shape():
    check_shape(torch.zeros(2, 5), (2, 5))
    assert "wrong shape: expected (5, 2), got (2, 5)" in message(
        check_shape, torch.zeros(2, 5), (5, 2)
    )


def test_short_sequences_and_small_tensors_are_shown_whole():
    text = message(check_equal, (5, 1), (1, 5), name="pair")
    assert "expected: (1, 5)" in text and "got:      (5, 1)" in text
    text = message(check_equal, [1, 2], [1, 2, 3], name="ids")
    assert "expected length 3, got 2" in text and "[1, 2, 3]" in text and "[1, 2]\n" not in text
    long = message(check_equal, list(range(100)), [*range(99), 5])
    assert "at [99]: expected 5, got 99" in long and "expected: [" not in long
    text = message(check_tensor, torch.tensor([1.0, 2.5]), torch.tensor([1.0, 2.0]))
    assert "expected: [1, 2]" in text and "got:      [1, 2.5]" in text
    big = message(check_tensor, torch.zeros(5, 5), torch.ones(5, 5))
    assert "expected: [" not in big


def test_integer_and_bool_comparisons_have_no_tolerance_text():
    text = message(check_tensor, torch.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2], [3, 5]]))
    assert "index (1, 1) (expected 5, got 4)" in text and "tolerance" not in text
    text = message(check_tensor, torch.tensor([True, False]), torch.tensor([True, True]))
    assert "expected True, got False" in text and "tolerance" not in text
    assert "expected: [True, True]" in text


def _end_cell(checks, error):
    checks._after_cell(type("Result", (), {"error_in_exec": error})())


def test_begin_test_adds_the_cells_hint_and_failed_prerequisites(monkeypatch):
    from course_utils import checks

    monkeypatch.setattr(checks, "_failed", {})
    monkeypatch.setattr(checks, "_attempts", {})
    checks.begin_test("test_norm", exercise=1, hint="eps inside the root")
    text = message(check_equal, 1, 2, name="norm")
    assert text.endswith("Hint: eps inside the root")  # no nudge: the hint at once
    _end_cell(checks, CheckFailed(text))
    assert checks._failed == {"test_norm": 1}

    checks.begin_test("test_block", exercise=3, hint="pre-norm", uses={"layer_norm": 1})
    text = message(check_equal, 1, 2, name="block", hint="this check's own hint")
    assert "This uses your `layer_norm` from exercise 1, whose checks fail: fix that first." in text
    assert text.endswith("Hint: this check's own hint") and "pre-norm" not in text
    _end_cell(checks, None)
    assert checks._failed == {"test_norm": 1}  # the block cell passed on a rerun: forgotten

    checks.begin_test("test_norm", exercise=1, hint="eps inside the root")  # rerun, passes
    _end_cell(checks, None)
    checks.begin_test("test_block", exercise=3, uses={"layer_norm": 1})
    assert "fix that first" not in message(check_true, False, "block differs")
    assert checks.prerequisite_note({"split_heads": 4, "merge_heads": 4}, {4}) == (
        "This uses your `split_heads` and `merge_heads` from exercise 4, whose checks fail: "
        "fix that first."
    )
    checks._after_cell(type("Result", (), {"error_in_exec": None})())


def test_a_nudge_first_then_the_hint_and_nothing_for_a_placeholder(monkeypatch, capsys):
    from course_utils import checks
    from course_utils.exercises import placeholder

    monkeypatch.setattr(checks, "_failed", {})
    monkeypatch.setattr(checks, "_attempts", {})
    kwargs = dict(exercise=2, hint="x[b] = ids[s : s + T]", nudge="targets are shifted by one")

    def untouched():
        raise NotImplementedError(placeholder(2, "lm_batch"))

    # An untouched exercise: the placeholder's own message, no hint, not counted as a try.
    checks.begin_test("test_lm_batch", **kwargs)
    with pytest.raises(NotImplementedError):
        checks.check_raises(ValueError, untouched, name="lm_batch(...)", hint="raise it")
    _end_cell(checks, NotImplementedError(placeholder(2, "lm_batch")))
    assert capsys.readouterr().out == "" and checks._attempts == {}

    checks.begin_test("test_lm_batch", **kwargs)  # first real failure: the nudge only
    text = message(check_equal, 1, 2, name="lm_batch", hint="the check's own hint")
    assert "Hint: targets are shifted by one" in text and "course_utils.hint(2)" in text
    assert "ids[s" not in text and "own hint" not in text
    _end_cell(checks, CheckFailed(text))

    checks.begin_test("test_lm_batch", **kwargs)  # again: the detailed hint
    assert message(check_equal, 1, 2, name="lm_batch").endswith("Hint: x[b] = ids[s : s + T]")
    _end_cell(checks, CheckFailed("x"))

    checks.begin_test("test_lm_batch", **kwargs)  # a crash: help printed under it, once
    _end_cell(checks, TypeError("bad"))
    assert capsys.readouterr().out.strip() == "Hint: x[b] = ids[s : s + T]"
    assert checks._attempts == {"test_lm_batch": 3}


def test_exercise_names_of_test_ids():
    from course_utils.checks import _exercise_name

    assert _exercise_name("test_merge") == "merge"
    assert _exercise_name("test_multi_head_2") == "multi_head"
    assert _exercise_name("test_top_k_filter") == "top_k_filter"
