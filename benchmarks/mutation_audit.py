"""Audit: which checks in the labs' test cells read an input after the learner's call?

``python benchmarks/mutation_audit.py [LAB ...]`` runs each lab's solution notebook
(``solutions/<lab>/<lab>.ipynb``, hidden tests included) cell by cell in one kernel
(``COURSE_PROFILE=smoke``). Before each test cell runs for real, it runs twice more with the
functions (and module classes' ``forward``) of the current exercise wrapped:

- ``after``: the solution computes its (correct) result, then zeroes every tensor, list,
  dict and module it was given, in place. A check that fails now built its reference from
  an input after the call (or checks that inputs are unchanged, which is intended): a wrong
  function that also zeroes its input could pass it.
- ``before``: the inputs are zeroed first and the solution runs on them, so the result is
  wrong for the real input. A check that passes now was fooled (or checks only shapes).

With ``--guard`` the test cells call the learner's code as grading does, through
:mod:`course_utils.tooling.call_guard`: every cell whose exercise was handed something it
could change should then fail in both modes ("... changed its input in place").

During these runs the checks of :mod:`course_utils.checks` record instead of raising, so each
check is reported by its ``name=``. Everything the wrapper zeroed is restored after each run,
so the notebook carries on as usual.

``--vandals`` (:func:`vandal_audit`) asks the question per test cell part instead: does the
visible part, and the hidden part, FAIL when the exercise's functions are vandals (the
solution behind a wrapper that first zeroes, reverses or doubles its inputs in place, then
answers for them)? ``tests/tooling/test_test_integrity.py`` requires that of every part of
every lab (about 3 minutes for all labs). ``--per-call N`` also vandalises each of a part's
first N calls alone and lists the calls no check then notices: a reference read after that
call, or one that does not depend on the input (an author's tool: expect some of the latter).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KERNEL_HELPERS = r"""
import functools as _audit_ft
import numpy as _audit_np
import torch as _audit_torch
import course_utils.checks as _audit_checks

_audit_saved = []
_audit_log = []
_audit_originals = {}


_audit_how = ["zero"]


def _audit_mutate(obj, seen=None):
    # Zero (or, with _audit_how[0] == "flip", reverse) obj in place; remember how it was.
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    flip, double = _audit_how[0] == "flip", _audit_how[0] == "double"
    if isinstance(obj, _audit_np.ndarray) and obj.flags.writeable and obj.size:
        try:
            obj = _audit_torch.from_numpy(obj)  # shares the array's memory
        except TypeError:
            return
    if isinstance(obj, _audit_torch.Tensor):
        if double and not obj.is_floating_point():
            return
        try:
            _audit_saved.append((obj, obj.detach().clone()))
            with _audit_torch.no_grad():
                if flip:  # the same values elsewhere: ids stay ids, masks stay masks
                    obj.copy_(obj.flip(list(range(obj.dim()))))
                elif double:  # positive stays positive, ids and masks are left alone
                    obj.mul_(2)
                else:
                    obj.zero_()
        except Exception:
            _audit_saved.pop()
    elif isinstance(obj, _audit_torch.nn.Module):
        for tensor in list(obj.parameters()) + list(obj.buffers()):
            _audit_mutate(tensor, seen)
    elif isinstance(obj, list):
        _audit_saved.append((obj, list(obj)))
        if flip:
            obj.reverse()
        for index, item in enumerate(obj):
            if double and isinstance(item, float):
                obj[index] = 2 * item
                continue
            if (flip or double) and isinstance(item, (bool, int, float, str)):
                continue
            if isinstance(item, bool):
                obj[index] = False
            elif isinstance(item, (int, float)):
                obj[index] = 0
            elif isinstance(item, str):
                obj[index] = ""
            else:
                _audit_mutate(item, seen)
    elif isinstance(obj, dict):
        _audit_saved.append((obj, dict(obj)))
        for key, item in list(obj.items()):
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                if not (flip or double):
                    obj[key] = 0
            else:
                _audit_mutate(item, seen)


def _audit_restore():
    while _audit_saved:
        obj, copy = _audit_saved.pop()
        if isinstance(obj, _audit_torch.Tensor):
            with _audit_torch.no_grad():
                obj.copy_(copy)
        elif isinstance(obj, list):
            obj[:] = copy
        elif isinstance(obj, dict):
            obj.clear()
            obj.update(copy)


_audit_touched = [0]
_AUDIT_VANDALS = ("zero", "flip", "double")
_audit_calls = [0, -1]  # calls so far, the one call to vandalise (-1: every call)


def _audit_wrapper(fn, mode):
    @_audit_ft.wraps(fn)
    def wrapper(*args, **kwargs):
        inputs = [*args, *kwargs.values()]
        call = _audit_calls[0]
        _audit_calls[0] += 1
        if mode in _AUDIT_VANDALS and _audit_calls[1] not in (-1, call):
            return fn(*args, **kwargs)
        if mode in _AUDIT_VANDALS:  # a vandal: changes its inputs, then answers for them
            _audit_how[0] = mode
            count = len(_audit_saved)
            for item in inputs:
                _audit_mutate(item)
            _audit_how[0] = "zero"
            _audit_touched[0] += len(_audit_saved) - count
            return fn(*args, **kwargs)
        if mode == "before":
            for item in inputs:
                _audit_mutate(item)
            return fn(*args, **kwargs)
        out = fn(*args, **kwargs)
        for item in inputs:
            _audit_mutate(item)
        return out

    return wrapper


def _audit_install(names, mode):
    g = globals()
    for name in names:
        obj = g.get(name)
        if isinstance(obj, type) and issubclass(obj, _audit_torch.nn.Module):
            _audit_originals[name] = ("forward", obj, obj.__dict__.get("forward"))
            if "forward" in obj.__dict__:
                obj.forward = _audit_wrapper(obj.__dict__["forward"], mode)
        elif callable(obj) and not isinstance(obj, type):
            _audit_originals[name] = ("global", None, obj)
            g[name] = _audit_wrapper(obj, mode)


def _audit_uninstall():
    g = globals()
    for name, (kind, owner, original) in _audit_originals.items():
        if kind == "global":
            g[name] = original
        elif original is not None:
            owner.forward = original
    _audit_originals.clear()


_audit_real = {}


def _audit_recording(on):
    names = ["check_tensor", "check_equal", "check_true", "check_shape", "check_raises"]
    if not _audit_real:
        _audit_real.update({n: getattr(_audit_checks, n) for n in names})
    for name in names:
        real = _audit_real[name]
        if not on:
            setattr(_audit_checks, name, real)
            continue

        def recorder(*args, _real=real, _name=name, **kwargs):
            label = kwargs.get("name") or kwargs.get("message")
            if label is None and _name == "check_true" and len(args) > 1:
                label = args[1]
            try:
                result = _real(*args, **kwargs)
            except AssertionError as error:
                _audit_log.append((_name, str(label), False, str(error).splitlines()[0][:120]))
                return None
            _audit_log.append((_name, str(label), True, ""))
            return result

        setattr(_audit_checks, name, recorder)
"""


def _defs(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]


class Kernel:
    def __init__(self):
        from jupyter_client.manager import start_new_kernel

        env = dict(os.environ, COURSE_PROFILE="smoke", OMP_WAIT_POLICY="PASSIVE")
        env.setdefault("MPLBACKEND", "Agg")
        self.km, self.kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(ROOT))

    def run(self, code: str, timeout: float = 600) -> tuple[bool, str]:
        errors: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}"[:200])

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        ok = reply["content"]["status"] == "ok"
        return ok, "; ".join(errors)

    def value(self, expression: str):
        out: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        self.kc.execute_interactive(
            f"print('@@' + __import__('json').dumps({expression}))", output_hook=hook
        )
        for line in "".join(out).splitlines():
            if line.startswith("@@"):
                return json.loads(line[2:])
        return None

    def close(self):
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def _code_cells(cells):
    """Each code cell as ``(nbgrader metadata, source, names, is_test)``: ``names`` are the
    functions the latest exercise cell defined, ``is_test`` says it is a test cell."""
    names: list[str] = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        meta = cell["metadata"].get("nbgrader", {})
        source = "".join(cell["source"])
        if meta.get("solution") and not meta.get("grade"):
            names = _defs(source)
        yield meta, source, names, bool(meta.get("grade") and not meta.get("solution"))


def audit(lab: str, modes=("after", "before"), guard: bool = False) -> dict:
    notebook = json.loads((ROOT / "solutions" / lab / f"{lab}.ipynb").read_text())
    kernel = Kernel()
    report: dict = {"lab": lab, "tests": []}
    try:
        ok, err = kernel.run(KERNEL_HELPERS)
        assert ok, err
        if guard:  # as when grading: test cells call the learner's code through the guard
            from course_utils.tooling.call_guard import rewrite_calls

            ok, err = kernel.run(
                "from course_utils.tooling import call_guard\ncall_guard.install()"
            )
            assert ok, err
        for meta, source, names, is_test in _code_cells(notebook["cells"]):
            if is_test:
                if guard:
                    source = rewrite_calls(source)
                entry = {"test": meta["grade_id"], "functions": names}
                for mode in modes:
                    kernel.run("_audit_log.clear(); _audit_recording(True)")
                    kernel.run(f"_audit_install({names!r}, {mode!r})")
                    ok, err = kernel.run(source)
                    kernel.run("_audit_uninstall(); _audit_restore(); _audit_recording(False)")
                    log = kernel.value("_audit_log")
                    entry[mode] = {"error": "" if ok else err, "checks": log}
                ok, err = kernel.run(source)
                entry["normal"] = "ok" if ok else err
                report["tests"].append(entry)
                _print_entry(entry)
                continue
            ok, err = kernel.run(source)
            if not ok:
                print(f"  (cell {meta.get('grade_id')} failed: {err})", flush=True)
    finally:
        kernel.close()
    return report


HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
VANDALS = ("zero", "flip", "double")
CAUGHT = ("CheckFailed:", "AssertionError:")


def split_test(source: str) -> tuple[str, str]:
    """A test cell's visible part and its hidden part ("" when it has none)."""
    if HIDDEN_BEGIN not in source:
        return source, ""
    visible, hidden = source.split(HIDDEN_BEGIN, 1)
    return visible, HIDDEN_BEGIN + hidden


def vandal_audit(lab: str, notebook: Path | None = None, per_call: int = 0) -> list[dict]:
    """Run each test cell's visible part, then its hidden part, against vandals.

    A vandal is the solution behind a wrapper that first changes every input it was given in
    place (``zero``: tensors, arrays and numbers to 0; ``flip``: tensors and arrays reversed
    along every axis, lists reversed; ``double``: floating-point values times 2) and then
    answers for the changed inputs: a wrong function whose answer a
    reference computed from those inputs after the call would confirm. Each part runs in the
    notebook's own kernel, as in the learner's notebook: no call guard. For each part and
    vandal the entry says ``caught`` (a check failed), ``error: ...`` (the cell failed
    otherwise), ``passed`` (the vandal passed: a reference read after the call, or a check
    that cannot tell), or ``untouched`` (the calls had nothing to change in place).
    """
    path = notebook or ROOT / "solutions" / lab / f"{lab}.ipynb"
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    kernel = Kernel()
    entries: list[dict] = []
    try:
        ok, err = kernel.run(KERNEL_HELPERS)
        assert ok, err
        for meta, source, names, is_test in _code_cells(cells):
            if not is_test:
                ok, err = kernel.run(source)
                if not ok:
                    raise RuntimeError(f"{lab}: cell {meta.get('grade_id')} failed: {err}")
                continue
            entry = {"lab": lab, "test": meta["grade_id"], "functions": names}
            visible, hidden = split_test(source)
            for part, code in (("visible", visible), ("hidden", hidden)):
                if not code.strip():
                    continue
                outcomes = {}
                for vandal in VANDALS:
                    if part == "hidden":  # the hidden part reads what the visible part made
                        ok, err = kernel.run(visible)
                        if not ok:
                            raise RuntimeError(f"{lab}: {meta['grade_id']} failed: {err}")
                    kernel.run(f"_audit_touched[0] = 0; _audit_install({names!r}, {vandal!r})")
                    ok, err = kernel.run(code)
                    kernel.run("_audit_uninstall(); _audit_restore()")
                    touched = kernel.value("_audit_touched[0]")
                    if ok:
                        outcomes[vandal] = "passed" if touched else "untouched"
                    else:
                        outcomes[vandal] = "caught" if err.startswith(CAUGHT) else f"error: {err}"
                entry[part] = outcomes
                if per_call:  # each of the first calls vandalised alone (zero, then flip)
                    entry[part + "_calls"] = calls = []
                    for target in range(per_call):
                        outcome = {}
                        for vandal in VANDALS:
                            if part == "hidden":
                                kernel.run(visible)
                            kernel.run(
                                f"_audit_touched[0] = 0; _audit_calls[:] = [0, {target}]; "
                                f"_audit_install({names!r}, {vandal!r})"
                            )
                            ok, err = kernel.run(code)
                            kernel.run("_audit_uninstall(); _audit_restore()")
                            touched, count = kernel.value("[_audit_touched[0], _audit_calls[0]]")
                            if ok:
                                outcome[vandal] = "passed" if touched else "untouched"
                            else:
                                outcome[vandal] = (
                                    "caught" if err.startswith(CAUGHT) else f"error: {err}"
                                )
                        if count <= target:
                            break
                        calls.append(verdict(outcome))
                    kernel.run("_audit_calls[:] = [0, -1]")
            ok, err = kernel.run(source)  # for real, so that later cells find their names
            if not ok:
                raise RuntimeError(f"{lab}: {meta['grade_id']} failed: {err}")
            entries.append(entry)
            print(json.dumps(entry), flush=True)
    finally:
        kernel.close()
    return entries


def verdict(outcomes: dict) -> str:
    """``caught`` if some vandal failed a check, ``untouched`` if none could change an input."""
    values = list(outcomes.values())
    if "caught" in values:
        return "caught"
    if all(v == "untouched" for v in values):
        return "untouched"
    return "NOT caught: " + ", ".join(f"{k} {v}" for k, v in outcomes.items())


def _print_entry(entry: dict) -> None:
    print(f"{entry['test']} (wraps {', '.join(entry['functions'])}): normal {entry['normal']}")
    after = entry.get("after")
    if after:
        failed = [c for c in after["checks"] if not c[2]]
        for name, label, _, why in failed:
            print(f"  after-call read: {name}({label}) -- {why}")
        if not failed:
            print(
                "  after: no check noticed inputs zeroed after the call"
                + (f" (cell error: {after['error']})" if after["error"] else "")
            )
    before = entry.get("before")
    if before:
        fooled = [c for c in before["checks"] if c[2]]
        caught = [c for c in before["checks"] if not c[2]]
        for name, label, _, _why in fooled:
            print(f"  before: passed on zeroed input: {name}({label})")
        if not caught and not before["error"]:
            print("  before: NOTHING caught a result computed from zeroed inputs")
        elif before["error"]:
            print(f"  before: the cell failed: {before['error'][:150]}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*")
    parser.add_argument("--json", help="write the full report here")
    parser.add_argument("--modes", default="after,before")
    parser.add_argument(
        "--guard", action="store_true", help="call the learner's code through the grading guard"
    )
    parser.add_argument(
        "--vandals",
        action="store_true",
        help="only: does each test cell's visible and hidden part fail against the vandals?",
    )
    parser.add_argument(
        "--per-call",
        type=int,
        default=0,
        help="with --vandals: also vandalise each of the first N calls of a part alone",
    )
    args = parser.parse_args()
    from course_utils import config

    labs = args.labs or list(config.LAB_NAMES)
    if args.vandals:
        for lab in labs:
            for entry in vandal_audit(lab, per_call=args.per_call):
                for part in ("visible", "hidden"):
                    if part in entry:
                        print(f"{lab} {entry['test']} {part}: {verdict(entry[part])}")
                    for index, result in enumerate(entry.get(part + "_calls", [])):
                        if result != "caught":
                            print(f"    call {index + 1} alone: {result}")
        return
    reports = []
    for lab in labs:
        print(f"== {lab}", flush=True)
        reports.append(audit(lab, tuple(args.modes.split(",")), guard=args.guard))
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
