"""What a notebook knows about the learner's exercises: finished and tested, or not yet.

In a released notebook every exercise starts as one line,
``raise NotImplementedError("Exercise 3 (merge): replace this line with your code")``
(:func:`placeholder`; ``python -m course_utils release`` writes it). A demo cell that uses
exercises starts with ``if course_utils.ready("merge", "encode"):``. While any of them is
unfinished, not yet defined because its cell has not run, or has not passed its visible test
in this kernel (the test cells report to :func:`record_test`), :func:`ready` prints one line
saying what to do and returns False, so the cell shows that line instead of a traceback or a
result computed with a wrong function; once they pass it returns True and prints nothing.

Each lab's hints live beside this module, in ``hints/<lab>.json`` (written by
``python -m course_utils build`` from the lab source's headers), not in the notebook's cells:
a failing test shows a short nudge first, and the detailed hint when it fails again or when
the learner asks with :func:`hint` (``course_utils.hint(3)`` or ``course_utils.hint("merge")``).
"""

from __future__ import annotations

import json
import os
import re
import sys
import types
from pathlib import Path
from typing import Any

__all__ = [
    "PLACEHOLDER_RE",
    "hint",
    "lab_hints",
    "placeholder",
    "ready",
    "record_test",
    "unfinished",
]

_TAIL = "replace this line with your code"
PLACEHOLDER_RE = re.compile(r"^Exercise (\d+) \((\w+)\): " + re.escape(_TAIL) + "$")


def placeholder(number: int, name: str) -> str:
    """The message an unfinished exercise raises: ``Exercise 3 (merge): replace this ...``."""
    if not isinstance(number, int) or number < 1 or not re.fullmatch(r"\w+", str(name)):
        raise ValueError(f"expected an exercise number >= 1 and a name, got {number!r}, {name!r}")
    return f"Exercise {number} ({name}): {_TAIL}"


def _codes(obj: Any, depth: int = 0):
    """The code objects of a function, a method, a class's methods, with nested code."""
    if depth > 3:
        return
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    wrapped = getattr(obj, "__wrapped__", None)  # a decorated function: @torch.no_grad() ...
    if wrapped is not None and wrapped is not obj:
        yield from _codes(wrapped, depth + 1)
    if isinstance(obj, property):
        for part in (obj.fget, obj.fset, obj.fdel):
            if part is not None:
                yield from _codes(part, depth + 1)
        return
    code = getattr(obj, "__code__", None)
    if isinstance(code, types.CodeType):
        stack = [code]
        while stack:
            current = stack.pop()
            yield current
            stack.extend(c for c in current.co_consts if isinstance(c, types.CodeType))
    elif isinstance(obj, type):
        for value in vars(obj).values():
            yield from _codes(value, depth + 1)


def unfinished(obj: Any) -> tuple[int, str] | None:
    """(number, exercise name) if ``obj`` still raises an exercise placeholder, else None."""
    for code in _codes(obj):
        for const in code.co_consts:
            if isinstance(const, str):
                match = PLACEHOLDER_RE.match(const)
                if match:
                    return int(match.group(1)), match.group(2)
    return None


HINTS_DIR = Path(__file__).resolve().parent / "hints"

# What this kernel has seen: the lab of the last test cell that ran, and each exercise's test
# cells with their last result and the exercise's objects when they ran (name -> object).
_seen: dict[str, Any] = {"lab": None}
_tests: dict[tuple[str, str], dict[str, tuple[bool, dict[str, Any]]]] = {}
_cache: dict[str, dict] = {}


def lab_hints(lab: str) -> dict:
    """The lab's hint file as a dict (``{}`` when the lab has none)::

    {"exercises": {"merge": {"number": 3, "defines": ["merge"]}},
     "tests": {"test_merge": {"exercise": "merge", "number": 3, "nudge": "...", "hint": "..."}}}
    """
    if not isinstance(lab, str) or not re.fullmatch(r"\w+", lab):
        return {}
    if lab not in _cache:
        try:
            data = json.loads((HINTS_DIR / f"{lab}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        _cache[lab] = data if isinstance(data, dict) else {}
    return _cache[lab]


def _all_labs() -> list[str]:
    try:
        return sorted(p.stem for p in HINTS_DIR.glob("*.json"))
    except OSError:
        return []


def _current_lab() -> str | None:
    """The lab this kernel works on: the last test cell's, else the notebook's folder."""
    if _seen["lab"]:
        return _seen["lab"]
    labs = set(_all_labs())
    session = os.environ.get("JPY_SESSION_NAME", "")  # the notebook's path, in Jupyter
    for candidate in (Path(session).stem if session else "", Path.cwd().name):
        if candidate in labs:
            return candidate
    return None


def record_test(lab: str | None, exercise: str, test: str, passed: bool, namespace: dict) -> None:
    """Remember a test cell's result (called by the test cell as it ends).

    ``namespace`` is the notebook's: the objects the exercise defines are remembered with the
    result, so that redefining the function after its test passed makes it untested again.
    """
    if lab:
        _seen["lab"] = lab
    defines = lab_hints(lab or "").get("exercises", {}).get(exercise, {}).get("defines", [])
    objects = {name: namespace.get(name) for name in defines if name in namespace}
    _tests.setdefault((lab or "", exercise), {})[test] = (bool(passed), objects)


def _owner(name: str) -> tuple[str, str, int] | None:
    """(lab, exercise, number) of the exercise whose cell defines ``name``, if any.

    The current lab is searched first: the same name may be an exercise of another lab.
    """
    current = _current_lab()
    labs = _all_labs()
    for lab in ([current] if current in labs else []) + [lab for lab in labs if lab != current]:
        for exercise, info in lab_hints(lab).get("exercises", {}).items():
            if name in info.get("defines", []):
                return lab, exercise, int(info.get("number", 0))
    return None


def _passed(name: str, obj: Any) -> bool | None:
    """True when ``obj`` passed its exercise's tests in this kernel, False when it has not,
    None when ``name`` is no exercise's (a helper: nothing to test)."""
    owner = _owner(name)
    if owner is None:
        return None
    results = list(_tests.get((owner[0], owner[1]), {}).values())
    if not results:
        return False
    return all(ok for ok, _ in results) and any(objects.get(name) is obj for _, objects in results)


def ready(*names: str) -> bool:
    """True when every function or class named is defined, finished and has passed its test.

    Otherwise it prints one line saying what to do and returns False. Call it at the top of
    a demo cell, with the names the cell uses: ``if course_utils.ready("merge"):``. Names are
    looked up where the call is made (the notebook's namespace). A name that no exercise
    defines (a helper of the lab) only needs to be defined and free of placeholders.
    """
    if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise ValueError(f"ready() takes the names of exercise functions as strings, got {names!r}")
    namespace = sys._getframe(1).f_globals
    for name in names:
        if name not in namespace:
            print(f"⏳ `{name}` is not defined yet: run its exercise cell (above), then this one.")
            return False
        found = unfinished(namespace[name])
        if found is not None:
            number, exercise = found
            print(f"⏳ Finish exercise {number} ({exercise}, `{name}`) to see this.")
            return False
        if _passed(name, namespace[name]) is False:
            _, exercise, number = _owner(name) or ("", name, 0)
            print(
                f"⏳ Exercise {number} ({exercise}, `{name}`) has not passed its test yet: run "
                "the test cell below it, fix what it reports, then run this cell again."
            )
            return False
    return True


def hint(exercise: int | str, *, lab: str | None = None) -> None:
    """Print the detailed hint(s) of an exercise: ``hint(3)`` or ``hint("merge")``.

    A failing test shows a short nudge first; this shows the code-level hint it keeps back.
    The lab is the one whose test cells ran last in this kernel, else the notebook's folder;
    pass ``lab="01_tokens_and_embeddings"`` to choose.
    """
    lab = lab or _current_lab()
    if lab is None:
        print(
            "hint(): cannot tell which lab this is; run one of its test cells first, or pass "
            'lab="..." (the notebook\'s name, e.g. lab="01_tokens_and_embeddings").'
        )
        return
    data = lab_hints(lab)
    tests = data.get("tests", {})
    chosen = [
        t
        for t in tests.values()
        if exercise in (t.get("number"), t.get("exercise")) and not isinstance(exercise, bool)
    ]
    if not chosen:
        known = ", ".join(
            f"{info.get('number')} ({name})" for name, info in data.get("exercises", {}).items()
        )
        print(
            f"hint(): lab {lab} has no exercise {exercise!r}; expected a number or a name: "
            f"{known or 'none found'}."
        )
        return
    shown: list[str] = []
    for test in chosen:
        if test.get("hint") and test["hint"] not in shown:
            shown.append(test["hint"])
    first = chosen[0]
    print(f"Hint for exercise {first.get('number')} ({first.get('exercise')}):")
    for text in shown:
        print(f"  {text}")
