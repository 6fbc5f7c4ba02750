"""The grader calls the learner's code so that it cannot change the test's inputs unseen.

A test cell calls a learner's function with tensors it then may read again: to build the
expected value, or for the next case. A wrong function that also changed its input in place
(zeroed it, say) could make the expected value match its wrong answer. So, when grading:

- :func:`rewrite_calls` (applied by :class:`~course_utils.tooling.safeguard.ScanSubmission`
  to every test cell, after :func:`~course_utils.tooling.trusted.rewrite_imports`) turns each
  call of a learner's function or class, ``mean_pool(hidden, pad)``, and of an object a test
  made from a learner's class, ``mha(x)``, into ``__course_call__(mean_pool)(hidden, pad)``;
  a call of any other variable, ``ffn(x)``, into ``__course_call__(ffn, FeedForward, ...)(x)``,
  which guards it only if it holds an object of one of the learner's classes.
  The learner's names are the ones a test cell reads without binding them (the build allows
  no others, see :func:`~course_utils.tooling.authoring.check_test_names`).
- :func:`install` (run by :mod:`~course_utils.tooling.kernel_boot` before any learner code)
  puts ``__course_call__`` into builtins. It copies every tensor the call receives (also
  inside lists, tuples and dicts, and the parameters and buffers of modules, the called
  module's own included) before the call, and compares after it. A change is undone and
  fails the test: "mean_pool changed its input in place". A call that is given an optimizer
  is a training step: it may change the modules' parameters (not its other inputs).

The copies and comparisons use functions taken at start-up, so a learner's patch of
``torch.equal`` cannot blind them. This protects grading; the visible tests in a learner's
notebook run as written.
"""

from __future__ import annotations

import ast

NAME = "__course_call__"


def install() -> None:
    """Put ``__course_call__`` into builtins (call before any untrusted code runs)."""
    import builtins

    import torch

    checks = getattr(builtins, "__course_checks__", None)
    check_failed = checks("CheckFailed")[0] if checks else AssertionError
    tensor_type, module_type = torch.Tensor, torch.nn.Module
    optimizer_type = torch.optim.Optimizer
    clone, detach, copy_, set_ = (
        tensor_type.clone,
        tensor_type.detach,
        tensor_type.copy_,
        tensor_type.set_,
    )
    isnan, eq, all_, item = torch.isnan, torch.eq, torch.all, tensor_type.item
    is_floating, is_complex = tensor_type.is_floating_point, tensor_type.is_complex
    parameters, buffers = module_type.parameters, module_type.buffers
    no_grad = torch.no_grad
    isinstance_, id_, len_, list_, dict_, tuple_ = isinstance, id, len, list, dict, tuple
    getattr_, zip_, any_, type_, str_, enumerate_ = getattr, zip, any, type, str, enumerate

    def snapshot(obj, saved, seen, modules, where, depth=0):
        if depth > 6 or id_(obj) in seen:
            return
        seen.add(id_(obj))
        if isinstance_(obj, tensor_type):
            with no_grad():
                copy = clone(detach(obj))
            saved.append(("tensor", obj, copy, tuple_(obj.shape), obj.dtype, where))
        elif isinstance_(obj, module_type):
            if modules:
                for tensor in [*parameters(obj), *buffers(obj)]:
                    snapshot(tensor, saved, seen, modules, where, depth + 1)
        elif isinstance_(obj, (list_, dict_)):
            kind = "list" if isinstance_(obj, list_) else "dict"
            saved.append((kind, obj, obj.copy(), None, None, where))
            for value in obj.values() if isinstance_(obj, dict_) else obj:
                snapshot(value, saved, seen, modules, where, depth + 1)
        elif isinstance_(obj, tuple_):
            for value in obj:
                snapshot(value, saved, seen, modules, where, depth + 1)

    def same_tensor(current, copy, shape, dtype):
        if tuple_(current.shape) != shape or current.dtype != dtype:
            return False
        with no_grad():
            now = detach(current)
            equal = eq(now, copy)
            if is_floating(now) or is_complex(now):
                equal = equal | (isnan(now) & isnan(copy))
            return bool(item(all_(equal)))

    def changed(entry) -> bool:
        kind, obj, copy = entry[0], entry[1], entry[2]
        if kind == "tensor":
            return not same_tensor(obj, copy, entry[3], entry[4])
        if kind == "list":
            return len_(obj) != len_(copy) or any_(a is not b for a, b in zip_(obj, copy))
        return list_(obj.items()) != list_(copy.items()) or any_(
            obj[k] is not v for k, v in copy.items()
        )

    def restore(entry) -> None:
        kind, obj, copy = entry[0], entry[1], entry[2]
        try:
            if kind == "tensor":
                with no_grad():
                    if tuple_(obj.shape) == entry[3] and obj.dtype == entry[4]:
                        copy_(obj, copy)
                    else:
                        set_(obj, clone(copy))
            elif kind == "list":
                obj[:] = copy
            else:
                obj.clear()
                obj.update(copy)
        except Exception:  # noqa: BLE001 - the test fails anyway; restoring is a courtesy
            pass

    def guard(fn, *learner_classes):
        if learner_classes:  # guard ``fn`` only if it is an object of one of these classes
            classes = tuple_(c for c in learner_classes if isinstance_(c, type_))
            if not classes or not isinstance_(fn, classes):
                return fn
        label = getattr_(fn, "__name__", None) or type_(fn).__name__

        def call(*args, **kwargs):
            inputs = [*args, *kwargs.values()]
            training = any_(isinstance_(a, optimizer_type) for a in inputs)
            saved: list = []
            seen: set = set()
            if isinstance_(fn, module_type):
                snapshot(fn, saved, seen, True, "its own parameters")
            for index, value in enumerate_(args):
                snapshot(value, saved, seen, not training, f"argument {index + 1}")
            for key, value in kwargs.items():
                snapshot(value, saved, seen, not training, f"{key}=")
            try:
                return fn(*args, **kwargs)
            finally:
                moved = [entry for entry in saved if changed(entry)]
                for entry in moved:
                    restore(entry)
                if moved:
                    where = ", ".join(dict_.fromkeys(e[5] for e in moved))
                    raise check_failed(
                        f"{str_(label)} changed its input in place ({where}): it must leave "
                        "what it is given as it was (work on a copy, e.g. x.clone(), or build "
                        "a new tensor or list)"
                    )

        return call

    guard.__name__ = guard.__qualname__ = NAME
    setattr(builtins, NAME, guard)


def rewrite_calls(source: str) -> str:
    """``source`` with each call of a learner's function or object wrapped in the guard.

    Only the callee's name changes (``f(`` becomes ``__course_call__(f)(``), so lines and
    their layout stay as they were.
    """
    from .authoring import free_names

    try:
        tree = ast.parse(source)
        learner = {n for n in free_names(source) if not n.startswith("__course")}
    except (SyntaxError, ValueError):
        return source
    made: set[str] = set()  # names a test binds to an object of a learner's class
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id in learner
        ):
            made.update(t.id for t in node.targets if isinstance(t, ast.Name))
    # Other variables may hold an object of a learner's class too (``ref, ffn = make(...)``):
    # their calls are guarded when, at run time, the object is one.
    defined = {
        n.name
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    imported = {
        (a.asname or a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in n.names
    }
    variables = (
        {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        - learner
        - made
        - defined
        - imported
    )
    classes = ", ".join(sorted(learner))
    edits = sorted(
        (
            (node.func.lineno, node.func.col_offset, node.func.end_col_offset, node.func.id)
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and (node.func.id in learner | made or (learner and node.func.id in variables))
        ),
        reverse=True,
    )
    lines = source.splitlines(keepends=True)
    for lineno, start, end, name in edits:
        raw = lines[lineno - 1].encode("utf-8")  # ast offsets count UTF-8 bytes
        extra = f", {classes}" if name in variables else ""
        raw = raw[:start] + f"{NAME}(".encode() + raw[start:end] + f"{extra})".encode() + raw[end:]
        lines[lineno - 1] = raw.decode("utf-8")
    return "".join(lines)


# A learner's function can also reach a test's variables by their global names (the test
# cells run at the notebook's top level): ``expected.zero_()`` inside ``mean_pool`` would make
# the expected value agree with a wrong answer. The safeguard flags that reading.

_R_TEST_VARIABLE = (
    "This function reads `{name}`, a variable the test cells set, by its global name: when a "
    "test calls the function it would see (and could change) the test's own values. Pass "
    "what the function needs as an argument, or give your variable another name."
)


def test_variables(test_sources: list[str], other_sources: list[str]) -> set[str]:
    """Names test cells assign at their top level that no other locked cell binds.

    Imports are left out (a learner's function reading ``torch`` is ordinary), and so are
    names the lab's other cells also use (data a demo cell made).
    """
    from .authoring import _top_level_names

    assigned: set[str] = set()
    for source in test_sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and isinstance(inner.ctx, ast.Store):
                    assigned.add(inner.id)
                if isinstance(inner, (ast.FunctionDef, ast.ClassDef)) and inner in tree.body:
                    assigned.add(inner.name)
    for source in other_sources:
        assigned -= _top_level_names(source)
    return assigned


def test_variable_findings(source: str, names: set[str]) -> list[dict]:
    """Where the functions and lambdas of a learner's cell read one of ``names`` as a global."""
    import symtable

    if not names:
        return []
    try:
        tree = ast.parse(source)
        table = symtable.symtable(source, "<cell>", "exec")
    except (SyntaxError, ValueError):
        return []
    hits: set[str] = set()
    stack = list(table.get_children())
    while stack:
        scope = stack.pop()
        stack.extend(scope.get_children())
        for symbol in scope.get_symbols():
            if symbol.is_global() and symbol.get_name() in names:
                hits.add(symbol.get_name())
    findings = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and inner.id in hits:
                findings.append(
                    {
                        "line": inner.lineno,
                        "construct": f"reads the test's `{inner.id}`",
                        "reason": _R_TEST_VARIABLE.format(name=inner.id),
                    }
                )
                hits.discard(inner.id)
    return sorted(findings, key=lambda f: f["line"])
