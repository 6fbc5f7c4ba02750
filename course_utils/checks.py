"""Friendly checks for exercise tests.

Every check raises :class:`CheckFailed` (an ``AssertionError``) whose message says what was
expected, what was found, and, when given, a hint: never a bare ``AssertionError``.

The checks look only at the values passed in. Tests compute their reference values inside the
test cell, from PyTorch itself, and pass both here.

Each test cell of a built notebook starts with one line the build writes from the cell's
header, ``begin_test("test_merge", lab="01_tokens_and_embeddings", exercise=3,
uses={"most_frequent_pair": 2})``. The test's hints are not in the cell: begin_test reads them
from the lab's hint file (:func:`course_utils.exercises.lab_hints`). From then until the cell
ends, a failing check shows, under its message:

- nothing when the exercise is still its untouched placeholder (the traceback says so);
- on the first real failure of this test in this kernel, the short nudge that names the idea
  (and how to ask for more: ``course_utils.hint(3)``);
- when it fails again, the detailed hint (a check's own ``hint=``, else the cell's);

and says so when an earlier exercise the test relies on has failing checks ("this uses your
`layer_norm` from exercise 1, whose checks fail: fix that first"). An error that is not a
check (a ``TypeError`` in the learner's code) gets the same lines printed under its
traceback. When the cell ends, its result is reported to
:func:`course_utils.exercises.record_test`, so that ``ready()`` waits until the test passes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckFailed",
    "begin_test",
    "help_lines",
    "is_placeholder",
    "prerequisite_note",
    "check_tensor",
    "check_shape",
    "check_equal",
    "check_true",
    "check_raises",
    "hidden_seed",
    "hidden_generator",
]


class CheckFailed(AssertionError):
    """A test of an exercise failed; the message explains why."""


# The test cell running now (set by begin_test) and the test cells that failed, by grade id.
_state: dict[str, Any] = {
    "test": None,
    "exercise": None,
    "name": None,
    "lab": None,
    "nudge": None,
    "hint": None,
    "uses": {},
    "shown": False,
}
_failed: dict[str, int] = {}  # grade id of a failed test cell -> its exercise number
_attempts: dict[str, int] = {}  # grade id -> real (not placeholder) failures in this kernel
_watching: list[Any] = []  # the IPython shell whose post_run_cell event we listen to


def begin_test(
    test: str,
    *,
    exercise: int,
    lab: str | None = None,
    hint: str | None = None,
    nudge: str | None = None,
    uses: dict[str, int] | None = None,
) -> None:
    """Start a test cell: its id, its lab, its exercise's number and what it relies on.

    ``uses`` maps the learner's functions from earlier exercises that this test calls
    (directly or through the exercise's code) to those exercises' numbers. The nudge and the
    hint come from the lab's hint file unless given here. The build writes this call at the
    top of every test cell; authors never write it by hand.
    """
    if not isinstance(test, str) or not isinstance(exercise, int) or isinstance(exercise, bool):
        raise TypeError("begin_test(test_id: str, exercise=<int>, lab=..., uses={...})")
    uses = dict(uses or {})
    if not all(isinstance(k, str) and type(v) is int for k, v in uses.items()):
        raise TypeError("begin_test: uses maps function names to exercise numbers")
    from .exercises import lab_hints

    info = lab_hints(lab).get("tests", {}).get(test, {}) if lab else {}
    name = info.get("exercise") or _exercise_name(test)
    _state.update(
        test=test,
        exercise=exercise,
        name=name,
        lab=lab,
        nudge=nudge or info.get("nudge") or None,
        hint=hint or info.get("hint") or None,
        uses=uses,
        shown=False,
    )
    _failed.pop(test, None)
    _watch_cells()


def _exercise_name(test: str) -> str:
    """``test_merge`` and ``test_merge_2`` belong to exercise ``merge``."""
    name = test[5:] if test.startswith("test_") else test
    head, _, tail = name.rpartition("_")
    return head if head and tail.isdigit() else name


def prerequisite_note(uses: dict[str, int], failed: set[int] | list[int]) -> str:
    """One sentence per earlier exercise that ``uses`` relies on and that has failing checks.

    ``prerequisite_note({"layer_norm": 1}, {1})`` is "This uses your `layer_norm` from
    exercise 1, whose checks fail: fix that first." Empty when nothing relied on failed.
    """
    by_number: dict[int, list[str]] = {}
    for name, number in uses.items():
        if number in failed:
            by_number.setdefault(number, []).append(f"`{name}`")
    sentences = []
    for number, names in sorted(by_number.items()):
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        sentences.append(
            f"This uses your {listed} from exercise {number}, whose checks fail: fix that first."
        )
    return " ".join(sentences)


def _current_note() -> str:
    failed = {n for t, n in _failed.items() if t != _state["test"]} - {_state["exercise"]}
    return prerequisite_note(_state["uses"], failed)


def help_lines(nudge: str | None, hint: str | None, attempt: int, number: int | None = None) -> str:
    """What a failing test shows: the nudge on the first failure, the hint after that.

    ``attempt`` counts this test's real failures in this kernel, this one included. Without
    a nudge the hint is shown at once; without either, nothing.
    """
    if attempt <= 1 and nudge:
        more = f"`course_utils.hint({number})`" if number else "`course_utils.hint(...)`"
        return f"Hint: {nudge}\n(Still stuck? {more} shows a detailed hint, as does failing again.)"
    text = hint or nudge
    return f"Hint: {text}" if text else ""


def _help(own_hint: str | None) -> str:
    """The help for a failure now: the nudge first, the detailed hint when it fails again."""
    if not _state["test"]:
        if _grading():
            return ""  # the test cell's begin_test (another copy) adds the nudge under it
        return f"Hint: {own_hint}" if own_hint else ""
    attempt = _attempts.get(_state["test"], 0) + 1
    return help_lines(_state["nudge"], own_hint or _state["hint"], attempt, _state["exercise"])


def _grading() -> bool:
    """True in a grading kernel, where each import of the checks is a fresh copy (see
    :mod:`course_utils.tooling.trusted`): a check cannot see its test cell's state there."""
    import sys

    registered = sys.modules.get(__name__)
    return registered is None or vars(registered) is not globals()


def _explain(message: str, hint: str | None) -> str:
    """The message with what the running test cell adds: the prerequisite note, the help."""
    note = _current_note() if _state["test"] else ""
    help_text = _help(hint)
    if _state["test"]:
        _failed[_state["test"]] = _state["exercise"]
        _state["shown"] = True
    return message + (f"\n{note}" if note else "") + (f"\n{help_text}" if help_text else "")


def is_placeholder(error: BaseException | None) -> bool:
    """True for the NotImplementedError an untouched exercise raises (nothing tried yet)."""
    from .exercises import PLACEHOLDER_RE

    return (
        type(error).__name__ == "NotImplementedError"
        and PLACEHOLDER_RE.match(str(error).strip()) is not None
    )


def _after_cell(result: Any) -> None:
    """IPython's post_run_cell: close the test cell, remember whether it failed."""
    test = _state["test"]
    if test is None:
        return
    error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
    try:
        if error is None:
            _failed.pop(test, None)
        else:
            if not is_placeholder(error):
                if not _state["shown"]:
                    # A crash in the learner's code, or a check from another copy of this
                    # module (grading gives each import its own): add the help under it.
                    extra = _current_note()
                    help_text = _help(None)
                    if help_text:
                        extra += ("\n" if extra else "") + help_text
                    if extra:
                        print(extra)
                _attempts[test] = _attempts.get(test, 0) + 1
            _failed[test] = _state["exercise"]
        _record(error is None)
    finally:
        _state.update(test=None, exercise=None, name=None, lab=None, nudge=None, hint=None, uses={})
        _state["shown"] = False


def _record(passed: bool) -> None:
    """Tell ``ready()`` how this test cell ended (with the exercise's objects as they are)."""
    try:
        from .exercises import record_test

        namespace = getattr(_watching[0], "user_ns", {}) if _watching else {}
        record_test(_state["lab"], _state["name"], _state["test"], passed, namespace)
    except Exception:  # noqa: BLE001 - bookkeeping for demo cells must never break a test
        pass


def _watch_cells() -> None:
    if _watching:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.events.register("post_run_cell", _after_cell)
        _watching.append(shell)


def _fail(name: str, problem: str, hint: str | None) -> None:
    raise CheckFailed(_explain(f"{name}: {problem}", hint))


def _show(value: Any, limit: int = 160) -> str | None:
    """``repr`` of a short value, or None when it would be too long to read at a glance."""
    text = repr(value)
    return text if len(text) <= limit else None


def _show_tensor(t: Any) -> str | None:
    """A small tensor written whole as nested lists (at most 16 numbers), else None."""
    if t.numel() > 16:
        return None
    integral = not (t.dtype.is_floating_point or t.dtype.is_complex)

    def fmt(x):
        if isinstance(x, list):
            return "[" + ", ".join(fmt(y) for y in x) + "]"
        return repr(x) if integral else f"{x:.6g}"

    return fmt(t.detach().cpu().tolist())


def _is_plain_tensor(value: Any) -> bool:
    import torch

    # Exact types only: a subclass could override comparisons and pass any test.
    return type(value) in (torch.Tensor, torch.nn.Parameter)


def check_shape(
    actual: Any, shape: tuple[int, ...], *, name: str = "output", hint: str | None = None
) -> None:
    """Check that ``actual`` is a tensor of exactly ``shape``."""
    if not _is_plain_tensor(actual):
        _fail(name, f"expected a torch.Tensor, got {type(actual).__name__}", hint)
    if tuple(actual.shape) != tuple(shape):
        _fail(name, f"wrong shape: expected {tuple(shape)}, got {tuple(actual.shape)}", hint)


def check_tensor(
    actual: Any,
    expected: Any,
    *,
    name: str = "output",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    check_dtype: bool = True,
    hint: str | None = None,
) -> None:
    """Check that tensor ``actual`` matches ``expected`` within ``|a - e| <= atol + rtol * |e|``.

    Checks, in order: it is a tensor, the shape, the dtype, NaN or infinity where the expected
    value has none, then the values; a mismatch reports the largest difference and where it is.
    The default tolerances suit float32 results computed in a different order from the
    reference (rounding differs by a few units in the last place).
    """
    import torch

    if not _is_plain_tensor(expected):
        raise TypeError(f"check_tensor: expected must be a torch.Tensor, got {type(expected)}")
    if not _is_plain_tensor(actual):
        _fail(name, f"expected a torch.Tensor, got {type(actual).__name__}: {actual!r:.80}", hint)
    if tuple(actual.shape) != tuple(expected.shape):
        _fail(
            name,
            f"wrong shape: expected {tuple(expected.shape)}, got {tuple(actual.shape)}",
            hint,
        )
    if check_dtype and actual.dtype != expected.dtype:
        _fail(name, f"wrong dtype: expected {expected.dtype}, got {actual.dtype}", hint)
    a = actual.detach().to("cpu", torch.float64)
    e = expected.detach().to("cpu", torch.float64)
    bad_a = ~torch.isfinite(a)
    bad_e = ~torch.isfinite(e)
    if bool((bad_a & ~bad_e).any()):
        where = tuple(int(i) for i in torch.nonzero(bad_a & ~bad_e)[0])
        what = "NaN" if bool(torch.isnan(a[where])) else "an infinity"
        shown_a, shown_e = _show_tensor(actual), _show_tensor(expected)
        whole = f"\n  expected: {shown_e}\n  got:      {shown_a}" if shown_a and shown_e else ""
        _fail(
            name,
            f"{what} where a finite value was expected: {int((bad_a & ~bad_e).sum())} such "
            f"place(s); the first is at index {where} (expected {e[where].item():.6g}, got "
            f"{a[where].item()}){whole}",
            hint,
        )
    # Positions where both are the same non-finite value (e.g. -inf in masked scores) agree.
    same_nonfinite = bad_a & bad_e & ((a == e) | (torch.isnan(a) & torch.isnan(e)))
    if bool((bad_e & ~same_nonfinite).any()):
        where = tuple(int(i) for i in torch.nonzero(bad_e & ~same_nonfinite)[0])
        _fail(name, f"at index {where}: expected {e[where].item()}, got {a[where].item()}", hint)
    whole = ""
    shown_a, shown_e = _show_tensor(actual), _show_tensor(expected)
    if shown_a is not None and shown_e is not None:
        whole = f"\n  expected: {shown_e}\n  got:      {shown_a}"
    exact = not (expected.dtype.is_floating_point or expected.dtype.is_complex)
    if exact and not (actual.dtype.is_floating_point or actual.dtype.is_complex):
        # Integers and booleans are equal or not: no tolerance to speak of.
        wrong = a != e
        if a.numel() and bool(wrong.any()):
            where = tuple(int(i) for i in torch.nonzero(wrong)[0])
            shown = bool if expected.dtype == torch.bool else int
            _fail(
                name,
                f"values differ in {int(wrong.sum())} of {a.numel()} places; the first is at "
                f"index {where} (expected {shown(e[where].item())}, got "
                f"{shown(a[where].item())}){whole}",
                hint,
            )
        return
    diff = torch.where(same_nonfinite, torch.zeros_like(a), (a - e).abs())
    allowed = atol + rtol * torch.where(same_nonfinite, torch.zeros_like(e), e.abs())
    if a.numel() and bool((diff > allowed).any()):
        excess = diff - allowed
        flat = int(torch.argmax(excess))
        where = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape))
        n_bad = int((diff > allowed).sum())
        _fail(
            name,
            f"values differ in {n_bad} of {a.numel()} places; the largest difference is "
            f"{diff[where].item():.3g} at index {where} (expected {e[where].item():.6g}, "
            f"got {a[where].item():.6g}; tolerance atol={atol:g}, rtol={rtol:g}){whole}",
            hint,
        )


def check_equal(
    actual: Any, expected: Any, *, name: str = "output", hint: str | None = None
) -> None:
    """Check ``actual == expected`` for plain Python values (int, str, list, dict, ...).

    The type must match exactly too, so an object that claims to equal everything fails.
    """
    problem = _difference(actual, expected, "")
    if problem is not None:
        _fail(name, problem, hint)


def _difference(actual: Any, expected: Any, where: str) -> str | None:
    """What differs between two plain values, or None; short sequences are shown whole."""
    at = f"at {where}: " if where else ""
    if type(actual) is not type(expected):
        return (
            f"{at}expected a {type(expected).__name__}, got {type(actual).__name__}: "
            f"{actual!r:.120}"
        )
    if isinstance(expected, (list, tuple)):
        whole = ""
        if _show(actual) is not None and _show(expected) is not None:
            whole = f"\n  expected: {expected!r}\n  got:      {actual!r}"
        if len(actual) != len(expected):
            return f"{at}expected length {len(expected)}, got {len(actual)}{whole}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            inner = _difference(a, e, f"{where}[{i}]")
            if inner is not None:
                # The whole sequence says more than one element; nested ones show the outer.
                return inner.split("\n  expected: ")[0] + whole if whole else inner
        return None
    if isinstance(expected, dict):
        if set(actual) != set(expected):
            missing = ", ".join(sorted(map(repr, set(expected) - set(actual)))[:5])
            extra = ", ".join(sorted(map(repr, set(actual) - set(expected)))[:5])
            return f"{at}keys differ: missing [{missing}], unexpected [{extra}]"
        for key in expected:
            inner = _difference(actual[key], expected[key], f"{where}[{key!r}]")
            if inner is not None:
                return inner
        return None
    if not bool(expected == actual):
        return f"{at}expected {expected!r:.200}, got {actual!r:.200}"
    return None


def check_true(condition: Any, message: str, *, hint: str | None = None) -> None:
    """Fail with ``message`` unless ``condition`` is the boolean ``True``.

    ``condition`` may be a Python bool or a one-element boolean tensor.
    """
    import torch

    if _is_plain_tensor(condition):
        if condition.numel() != 1 or condition.dtype != torch.bool:
            raise TypeError("check_true: pass a bool or a one-element bool tensor")
        condition = bool(condition.item())
    if condition is not True:
        raise CheckFailed(_explain(message, hint))


def check_raises(
    exception: type[BaseException],
    func,
    *args,
    name: str = "call",
    hint: str | None = None,
    **kwargs,
) -> BaseException:
    """Check that ``func(*args, **kwargs)`` raises ``exception``; return the exception."""
    try:
        func(*args, **kwargs)
    except exception as error:  # noqa: B902 - any subclass is fine
        return error
    except Exception as error:  # noqa: BLE001
        if is_placeholder(error):
            raise  # an untouched exercise: its placeholder says what to do
        _fail(
            name,
            f"expected {exception.__name__}, but it raised {type(error).__name__}: {error}",
            hint,
        )
    _fail(name, f"expected {exception.__name__}, but nothing was raised", hint)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# Hidden test cases from the course's secret
# --------------------------------------------------------------------------------------------


def hidden_seed(name: str, default: int) -> int:
    """The seed of a hidden test's random cases: ``default``, or one drawn from a secret.

    When an instructor grades with a secret (``COURSE_GRADING_SECRET``, see the README), the
    grading kernel holds a key derived from it and the lab; the seed is then
    HMAC-SHA256(key, ``name``), so reading the public tests does not tell which cases are
    graded. Everywhere else (a learner's notebook, ``grade`` without a secret, the test
    suite) it is ``default``, today's seed. ``name`` is unique within the lab (the test's).
    """
    if not isinstance(name, str) or not name or type(default) is not int:
        raise TypeError("hidden_seed(name: str, default: int)")
    key = _grading_key()
    if not key:
        return default
    import hashlib
    import hmac

    digest = hmac.new(key.encode(), name.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # below 2**63: any PyTorch seed


def hidden_generator(name: str, default: Any):
    """A ``torch.Generator`` for a hidden test's random cases.

    ``default`` is today's seed (an int, giving ``torch.Generator().manual_seed(default)``)
    or a generator to carry on with (returned as it is). With a grading secret, a new
    generator seeded by :func:`hidden_seed` instead.
    """
    import torch

    if isinstance(default, torch.Generator):
        return torch.Generator().manual_seed(hidden_seed(name, 0)) if _grading_key() else default
    return torch.Generator().manual_seed(hidden_seed(name, default))


def _grading_key() -> str:
    """The grading kernel's key (put here by the grader's start-up code), or ""."""
    key = globals().get("__grading_key__")
    return key if isinstance(key, str) else ""
