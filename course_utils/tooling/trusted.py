"""Checks a learner's code cannot swap: the grading kernel's side and the grader's side.

In the kernel, :func:`install` (run by :mod:`course_utils.tooling.kernel_boot` before any
learner code) reads ``course_utils/checks.py`` once, compiles it, imports what it imports and
takes a copy of those modules' attributes and of the builtins. It then puts
``__course_checks__(*names)`` into builtins: each call executes the compiled code in a new
module object whose builtins and imports are fresh copies of that start-up state.

In the grader, :func:`rewrite_imports` turns a test cell's ``from course_utils.checks import
check_tensor`` into ``(check_tensor,) = __course_checks__("check_tensor")`` (line numbers
kept), so test cells never look the checks up in ``sys.modules`` or in a module's attributes.
"""

from __future__ import annotations

import ast

CHECKS = "course_utils.checks"
NAME = "__course_checks__"
KEY_VARIABLE = "COURSE_GRADING_KEY"  # the grading kernel's key for hidden cases, per lab


def _imported_modules(tree: ast.AST, package: str) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.append(base)
    return names


def install() -> None:
    """Put ``__course_checks__`` into builtins (call before any untrusted code runs)."""
    import builtins
    import importlib
    import importlib.util
    import os
    import types
    import warnings

    # The key for hidden test cases (see checks.hidden_seed), taken out of the environment
    # before any learner code runs; only the checks built below see it.
    grading_key = os.environ.pop(KEY_VARIABLE, "")
    spec = importlib.util.find_spec(CHECKS)
    if spec is None or not spec.origin:
        raise ImportError(f"cannot find {CHECKS}")
    with open(spec.origin, encoding="utf-8") as handle:
        source = handle.read()
    package = CHECKS.rpartition(".")[0]
    tree = ast.parse(source, spec.origin)
    code = compile(tree, spec.origin, "exec", dont_inherit=True)
    original_import = builtins.__import__
    module_type, exec_, dict_, tuple_ = types.ModuleType, builtins.exec, dict, tuple

    frozen: dict[str, tuple[str, dict]] = {}  # module name -> (name, attributes at start-up)

    def freeze(module, depth):
        name = vars(module).get("__name__")
        if not isinstance(name, str) or name in frozen:
            return
        attributes = dict_(vars(module))
        frozen[name] = (name, attributes)
        if depth:
            for value in attributes.values():
                if not isinstance(value, module_type):
                    continue
                inner = vars(value).get("__name__")
                if isinstance(inner, str) and inner.startswith(name + "."):
                    freeze(value, depth - 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated attributes warn when looked at
        for name in _imported_modules(tree, package):
            if name and name != "__future__":
                freeze(importlib.import_module(name), 1)
        frozen_builtins = dict_(vars(builtins))
        # Which attributes of each frozen module are other frozen modules (found once, here).
        links = {
            name: [
                (key, vars(value).get("__name__"))
                for key, value in attributes.items()
                if isinstance(value, module_type) and vars(value).get("__name__") in frozen
            ]
            for name, (_, attributes) in frozen.items()
        }

    def proxies():
        made = {name: module_type(name) for name in frozen}
        for name, (_, attributes) in frozen.items():
            copy = dict_(attributes)
            for key, inner in links[name]:
                copy[key] = made[inner]
            vars(made[name]).update(copy)
        return made

    def checks(*names):
        made = proxies()

        def fresh_import(name, globals=None, locals=None, fromlist=(), level=0):
            if level:
                base = package.rsplit(".", level - 1)[0] if level > 1 else package
                name = f"{base}.{name}" if name else base
            top = name.partition(".")[0]
            if fromlist and name in made:
                return made[name]
            if not fromlist and top in made:
                return made[top]
            return original_import(name, globals, locals, fromlist, 0)

        own_builtins = dict_(frozen_builtins)
        own_builtins["__import__"] = fresh_import
        module = module_type(CHECKS)
        namespace = vars(module)
        namespace.update(__builtins__=own_builtins, __file__=spec.origin, __package__=package)
        if grading_key:
            namespace["__grading_key__"] = grading_key
        exec_(code, namespace)
        if not names:
            return module
        missing = [n for n in names if n not in namespace]
        if missing:
            raise ImportError(f"cannot import {', '.join(missing)} from {CHECKS}")
        return tuple_(namespace[n] for n in names)

    checks.__name__ = checks.__qualname__ = NAME
    setattr(builtins, NAME, checks)


def _replacement(node: ast.stmt) -> str | None:
    """The ``__course_checks__`` statement for an import of the checks, or None."""
    if isinstance(node, ast.ImportFrom) and node.level == 0:
        if node.module == CHECKS and all(a.name != "*" for a in node.names):
            targets = ", ".join(a.asname or a.name for a in node.names)
            names = ", ".join(repr(a.name) for a in node.names)
            return f"({targets},) = {NAME}({names})"
        if node.module == package_name() and any(a.name == "checks" for a in node.names):
            lines = []
            others = [a for a in node.names if a.name != "checks"]
            if others:
                listed = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in others)
                lines.append(f"from {node.module} import {listed}")
            for alias in node.names:
                if alias.name == "checks":
                    lines.append(f"{alias.asname or 'checks'} = {NAME}()")
            return "; ".join(lines)
    if isinstance(node, ast.Import) and len(node.names) == 1:
        alias = node.names[0]
        if alias.name == CHECKS and alias.asname:
            return f"{alias.asname} = {NAME}()"
    return None


def package_name() -> str:
    return CHECKS.rpartition(".")[0]


def rewrite_imports(source: str) -> str:
    """``source`` with its imports of the course's checks obtained from the grader instead."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        new = _replacement(node)
        if new is None:
            continue
        first, last = node.lineno - 1, node.end_lineno - 1
        before = lines[first][: node.col_offset]
        after = lines[last][node.end_col_offset :]
        if before.strip() or after.strip():
            continue  # shares its line with other code: too unusual to rewrite safely
        edits.append((first, last, before + new + "  # the grader's own checks\n"))
    for first, last, text in sorted(edits, reverse=True):
        lines[first : last + 1] = [text] + ["\n"] * (last - first)
    return "".join(lines)
