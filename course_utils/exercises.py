"""What a notebook knows about the learner's exercises: finished, or still a placeholder.

In a released notebook every exercise starts as one line,
``raise NotImplementedError("Exercise 3 (merge): replace this line with your code")``
(:func:`placeholder`; ``python -m course_utils release`` writes it). A demo cell that uses
exercises starts with ``if course_utils.ready("merge", "encode"):``. While any of them is
unfinished, or not yet defined because its cell has not run, :func:`ready` prints one line
saying which exercise to finish and returns False, so the cell shows that line instead of a
traceback; once they are done it returns True and prints nothing.
"""

from __future__ import annotations

import re
import sys
import types
from typing import Any

__all__ = ["PLACEHOLDER_RE", "placeholder", "ready", "unfinished"]

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


def ready(*names: str) -> bool:
    """True when every function or class named is defined and finished; else one line, False.

    Call it at the top of a demo cell, with the names the cell uses:
    ``if course_utils.ready("merge"):``. Names are looked up where the call is made (the
    notebook's namespace).
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
    return True
