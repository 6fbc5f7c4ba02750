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
so the notebook carries on as usual. The audit is a tool for authors, not a test (it takes a
few minutes per lab); ``tests/tooling/test_test_integrity.py`` runs the cheap part.
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
import torch as _audit_torch
import course_utils.checks as _audit_checks

_audit_saved = []
_audit_log = []
_audit_originals = {}


def _audit_mutate(obj, seen=None):
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, _audit_torch.Tensor):
        try:
            _audit_saved.append((obj, obj.detach().clone()))
            with _audit_torch.no_grad():
                obj.zero_()
        except Exception:
            _audit_saved.pop()
    elif isinstance(obj, _audit_torch.nn.Module):
        for tensor in list(obj.parameters()) + list(obj.buffers()):
            _audit_mutate(tensor, seen)
    elif isinstance(obj, list):
        _audit_saved.append((obj, list(obj)))
        for index, item in enumerate(obj):
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


def _audit_wrapper(fn, mode):
    @_audit_ft.wraps(fn)
    def wrapper(*args, **kwargs):
        inputs = [*args, *kwargs.values()]
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
        names: list[str] = []
        for cell in notebook["cells"]:
            if cell["cell_type"] != "code":
                continue
            meta = cell["metadata"].get("nbgrader", {})
            source = "".join(cell["source"])
            if meta.get("solution") and not meta.get("grade"):
                names = _defs(source)
            if meta.get("grade") and not meta.get("solution"):
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
    args = parser.parse_args()
    from course_utils import config

    labs = args.labs or list(config.LAB_NAMES)
    reports = []
    for lab in labs:
        print(f"== {lab}", flush=True)
        reports.append(audit(lab, tuple(args.modes.split(",")), guard=args.guard))
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
