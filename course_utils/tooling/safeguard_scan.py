"""Static scan of one notebook cell for code that reaches into the kernel or the grader.

nbgrader runs a learner's cells and the instructor's test cells in the same IPython kernel, so a
submission can make the tests pass without solving anything: rewrite later cells through
``get_ipython()``, replace ``torch.allclose`` or a course check, read a test's expected value
from its stack frame, return an object that equals everything, and so on. :func:`scan_source`
looks for such constructs in the source of one cell and returns a :class:`Finding` for each.

The scan is purely static: nothing from the cell is executed or imported. IPython syntax
(``%magic``, ``!shell``, ``%%cell_magic``, automagic one-liners) is first rewritten the way the
kernel rewrites it; the code that the harmless magics ``%time``, ``%timeit`` and ``%matplotlib``
run is scanned recursively. A cell that still does not parse returns no findings: it simply
fails when it runs.

The rules favour ordinary solutions: loops, tensors, ``nn.Module`` subclasses, ``self.x = ...``,
``param.requires_grad = False``, ``getattr(self, name)``, ``model.eval()``, docstrings that
mention ``exec`` and the like are never flagged.

A typical 50-line cell scans in about 2-3 ms. The first scan that meets an attribute assignment
on something other than ``self`` imports torch and numpy (once, about a second) to learn their
attribute names; a grader may call ``scan_source("x.y = 1")`` once to warm up.
"""

from __future__ import annotations

import ast
import keyword
import warnings

from .safeguard_rules import (
    _ALLOWED_LINE_MAGICS,
    _R_TOO_DEEP,
    _RISKY_BARE_MAGICS,
    Finding,
    _builtin_names,
    _line_magics,
    _transformer,
)
from .safeguard_visitor import (
    _Visitor,
)

__all__ = ["Finding", "scan_source"]


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

_PARSE_FLAGS = ast.PyCF_ONLY_AST | getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)


class _TooDeep(Exception):
    """The parser ran out of stack; the kernel, with another recursion limit, might not."""


def _parse(code: str) -> ast.Module | None:
    import __future__

    too_deep = False
    for extra in (0, __future__.barry_as_FLUFL.compiler_flag):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return compile(
                    code, "<cell>", "exec", flags=_PARSE_FLAGS | extra, dont_inherit=True
                )
        except (RecursionError, MemoryError):
            too_deep = True
        except (SyntaxError, ValueError, TypeError):
            continue
    if too_deep:
        raise _TooDeep
    return None


def _automagic(code: str) -> tuple[str, str, bool] | None:
    """How the kernel would run a one-line cell as a magic without ``%`` (automagic).

    Returns (magic name, magic call source, whether the line is also valid Python), or None.
    """
    lines = code.splitlines()
    if len(lines) != 1:
        return None
    try:
        from IPython.core.splitinput import LineInfo

        info = LineInfo(lines[0])
    except Exception:  # noqa: BLE001
        return None
    ifun, rest = info.ifun, info.the_rest
    if info.esc or not ifun or not ifun.isidentifier() or ifun not in _line_magics():
        return None
    if rest[:1] in ("=", ","):
        return None
    if keyword.iskeyword(ifun) or ifun in _builtin_names():
        return None
    magic_line = (ifun + " " + rest).partition(" ")[2]
    call = f"get_ipython().run_line_magic({ifun!r}, {magic_line!r})\n"
    valid_python = _parse(code) is not None
    if valid_python and rest and not rest.startswith("-"):
        return None  # ``reset(model)``, ``run.x``: ordinary Python, meant as such
    return ifun, call, valid_python


# --------------------------------------------------------------------------------------------
# The scanner
# --------------------------------------------------------------------------------------------


def scan_source(source: str) -> list[Finding]:
    """Return what in one cell's ``source`` reaches into the kernel or the grader.

    ``source`` may contain IPython syntax. A cell that does not parse returns ``[]``.
    Findings are sorted by line; each construct is reported once per line.
    """
    findings = _scan(source, offset=0, depth=0)
    return sorted(findings or [], key=lambda f: (f.line, f.construct))


def _scan(source: str, offset: int, depth: int) -> list[Finding] | None:
    """Findings for ``source`` whose line 1 is line ``offset + 1``; None if it does not parse."""
    if not isinstance(source, str):
        return None
    try:
        transformer = _transformer()
    except ImportError:  # no IPython here: scan the cell as plain Python rather than not at all
        transformer = None
    if transformer is None:
        code = source
    else:
        try:
            code = transformer.transform_cell(source)
        except Exception:  # noqa: BLE001 - the kernel would fail the same way and run nothing
            return None
    src_lines = source.splitlines() or [""]
    skipped = 0
    for line in src_lines:
        if line and not line.isspace():
            break
        skipped += 1

    try:
        auto = _automagic(code)
        tree = _parse(code)
        extra: list[Finding] = []
        if auto is not None:
            name, call, valid_python = auto
            if not valid_python:
                code, tree = call, _parse(call)
            elif name in _RISKY_BARE_MAGICS or name in _ALLOWED_LINE_MAGICS:
                extra = _scan_tree(_parse(call), call, src_lines, skipped, offset, depth)
    except _TooDeep:
        return [Finding(offset + skipped + 1, "code nested too deeply to check", _R_TOO_DEEP)]
    if tree is None:
        return None
    return _dedupe(extra + _scan_tree(tree, code, src_lines, skipped, offset, depth))


def _line_map(code: str, src_lines: list[str], skipped: int) -> list[int]:
    """For each line of the transformed ``code``, its 1-based line in the source.

    IPython drops leading blank lines and joins a magic or ``!`` line with the lines its
    trailing backslashes continue; every other line keeps its place.
    """
    mapping = []
    src = skipped
    for line in code.splitlines():
        mapping.append(min(src, len(src_lines) - 1) + 1)
        if (
            "get_ipython()" in line
            and src < len(src_lines)
            and ("get_ipython()" not in src_lines[src])
        ):
            while src < len(src_lines) - 1 and src_lines[src].rstrip().endswith("\\"):
                src += 1
        src += 1
    return mapping


def _scan_tree(
    tree: ast.Module | None, code: str, src_lines: list[str], skipped: int, offset: int, depth: int
) -> list[Finding]:
    if tree is None:
        return []
    try:
        visitor = _Visitor(tree, _line_map(code, src_lines, skipped), offset, depth)
        visitor.run()
    except RecursionError:
        # Python compiles deeper nesting than a recursive walk can follow.
        return [Finding(offset + skipped + 1, "code nested too deeply to check", _R_TOO_DEEP)]
    return visitor.findings


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[int, str]] = set()
    out = []
    for f in findings:
        if (f.line, f.construct) not in seen:
            seen.add((f.line, f.construct))
            out.append(f)
    return out
