"""How the safeguard scanner detects each construct: a pre-pass over the cell's names and
scopes, then one ``ast.NodeVisitor`` that reports a :class:`Finding` for each forbidden construct.

What is forbidden, and the reasons given, are in :mod:`course_utils.tooling.safeguard_rules`;
parsing IPython syntax and the public :func:`~course_utils.tooling.safeguard_scan.scan_source` in
:mod:`course_utils.tooling.safeguard_scan`.
"""

from __future__ import annotations

import ast
import re

from .safeguard_rules import (
    _ALLOWED_CELL_MAGICS,
    _ALLOWED_FROM_IMPORTS,
    _ALLOWED_FUTURE,
    _ALLOWED_MODULE_SETTINGS,
    _CODE_FILE_CALLS,
    _CODE_FILE_RE,
    _COMPUTED_GETATTR_ROOTS,
    _CONCURRENT_OK,
    _DEFAULT_ALIASES,
    _DEFAULT_FORBIDDEN_NAMES,
    _DUNDER_NAME_OK,
    _DUNDER_READ_OK,
    _DUNDER_WRITE_OK,
    _ENUM_BASES,
    _EXEC_NAMES,
    _FAKE_DUNDERS,
    _FILE_CALLS,
    _FORBIDDEN_BASES,
    _FORBIDDEN_MODULES,
    _FORBIDDEN_SUBMODULES,
    _FORBIDDEN_WORD_RE,
    _FRAME_ATTRS,
    _GC_ATTRS,
    _GETATTR_FORBIDDEN_LITERALS,
    _GRADER_FILE_RE,
    _HOOK_ATTRS,
    _INDIRECT_OK,
    _INSPECT_OK,
    _IPYTHON_ATTRS,
    _LENIENT_BUILTINS,
    _MAX_MAGIC_DEPTH,
    _MODULE_ARG_OK_CALLEES,
    _MODULE_NAMED_ATTRS,
    _MODULES_DICT_METHODS,
    _NAMESPACE_NAMES,
    _NATIVE_ATTRS,
    _OS_ATTRS,
    _OS_EXEC_RE,
    _OUTPUT_ATTRS,
    _PASSABLE_CLASSES,
    _PASSABLE_MODULES,
    _R_BREAKPOINT,
    _R_BUILTINS,
    _R_COMPUTED_WRITE,
    _R_DUNDER,
    _R_DUNDER_NAME,
    _R_DUNDER_STORE,
    _R_DYNAMIC_CLASS,
    _R_EXEC,
    _R_EXIT,
    _R_FAKE_METHOD,
    _R_FILE_CODE,
    _R_FRAME,
    _R_FUTURE,
    _R_GC,
    _R_GETATTR_COMPUTED,
    _R_GRADER_FILES,
    _R_HOOK,
    _R_IMPORT,
    _R_INDIRECT,
    _R_INTERNAL_MODULE,
    _R_IPYTHON,
    _R_MAGIC,
    _R_METACLASS,
    _R_MOCK,
    _R_MODULE_PASSED,
    _R_MONKEYPATCH,
    _R_NAMESPACE,
    _R_NATIVE,
    _R_OUTPUT,
    _R_PICKLE,
    _R_PRIVATE,
    _R_PROCESS,
    _R_REBIND,
    _R_REFLECTIVE_VALUE,
    _R_SHELL,
    _R_STAR,
    _R_STRING,
    _R_STRING_EVAL,
    _R_SUBCLASS,
    _R_SYS,
    _R_TIMEIT_STRING,
    _R_TOO_DEEP,
    _R_TRACE,
    _REFLECTIVE,
    _SAFE_VALUE_CALLS,
    _SHELL_ALIAS_MAGICS,
    _STRICT_BUILTINS,
    _STRING_EVAL_ATTRS,
    _SYS_ATTRS,
    _SYS_STREAMS,
    _TENSOR_FACTORIES,
    _TORCH_DTYPES,
    _TRACE_ATTRS,
    Finding,
    _builtin_names,
    _exception_names,
    _protected_attrs,
)

# --------------------------------------------------------------------------------------------
# Small AST helpers
# --------------------------------------------------------------------------------------------


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _root_name(node: ast.AST) -> str | None:
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, (ast.Attribute, ast.Subscript, ast.Starred)):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        else:
            return None


def _dotted(node: ast.AST) -> str:
    """A short readable spelling of an attribute chain, for the construct."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return f"{_dotted(node.func)}()"
    if isinstance(node, ast.Subscript):
        return f"{_dotted(node.value)}[...]"
    return "(...)"


def _contains_lambda(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Lambda) for n in ast.walk(node))


def _target_names(target: ast.AST) -> list[ast.Name]:
    if isinstance(target, ast.Name):
        return [target]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


class _Scope:
    """Names bound in one scope (module, function, lambda, class or comprehension)."""

    __slots__ = ("kind", "bound", "params", "globals", "stored")

    def __init__(self, kind: str, params: set[str] | None = None):
        self.kind = kind
        self.params: set[str] = params or set()
        self.bound: set[str] = set(self.params)
        self.globals: set[str] = set()
        self.stored: set[str] = set()

    def finish(self) -> None:
        self.bound -= self.globals
        # ``self`` stops being the instance if the function assigns it.
        self.params -= self.stored


def _params(args: ast.arguments) -> set[str]:
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    if args.vararg:
        every.append(args.vararg)
    if args.kwarg:
        every.append(args.kwarg)
    return {a.arg for a in every}


class _Prepass:
    """One walk over the tree: the scopes and what each binds, imports, simple aliases."""

    def __init__(self, tree: ast.AST):
        self.scopes: dict[int, _Scope] = {}
        self.imported: dict[str, str] = {}
        self.plain_bound: set[str] = set()
        self.alias_assigns: list[tuple[str, ast.AST]] = []
        root = _Scope("module")
        self.scopes[id(tree)] = root
        for child in ast.iter_child_nodes(tree):
            self._walk(child, root)
        for scope in self.scopes.values():
            scope.finish()

    def _new(self, node: ast.AST, kind: str, params: set[str] | None = None) -> _Scope:
        scope = _Scope(kind, params)
        self.scopes[id(node)] = scope
        if params:
            self.plain_bound.update(params)
        return scope

    def _walk_arguments(self, args: ast.arguments, scope: _Scope) -> None:
        for default in [*args.defaults, *args.kw_defaults]:
            if default is not None:
                self._walk(default, scope)
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None and a.annotation is not None:
                self._walk(a.annotation, scope)

    def _walk(self, node: ast.AST, scope: _Scope) -> None:  # noqa: C901 - one dispatch
        kind = type(node)
        if kind is ast.Name:
            if not isinstance(node.ctx, ast.Load):
                scope.bound.add(node.id)
                self.plain_bound.add(node.id)
                if isinstance(node.ctx, ast.Store):
                    scope.stored.add(node.id)
            return
        if kind in (ast.Constant, ast.Load, ast.Store):
            return
        if kind in (ast.FunctionDef, ast.AsyncFunctionDef):
            scope.bound.add(node.name)
            self.plain_bound.add(node.name)
            inner = self._new(node, "function", _params(node.args))
            for deco in node.decorator_list:
                self._walk(deco, scope)
            self._walk_arguments(node.args, scope)
            if node.returns is not None:
                self._walk(node.returns, scope)
            for stmt in node.body:
                self._walk(stmt, inner)
            return
        if kind is ast.Lambda:
            inner = self._new(node, "lambda", _params(node.args))
            self._walk_arguments(node.args, scope)
            self._walk(node.body, inner)
            return
        if kind is ast.ClassDef:
            scope.bound.add(node.name)
            self.plain_bound.add(node.name)
            inner = self._new(node, "class")
            for child in [*node.decorator_list, *node.bases, *node.keywords]:
                self._walk(child, scope)
            for stmt in node.body:
                self._walk(stmt, inner)
            return
        if kind in _COMPREHENSIONS:
            inner = self._new(node, "comp")
            for i, gen in enumerate(node.generators):
                self._walk(gen.iter, scope if i == 0 else inner)
                self._walk(gen.target, inner)
                for cond in gen.ifs:
                    self._walk(cond, inner)
            for field in ("elt", "key", "value"):
                child = getattr(node, field, None)
                if child is not None:
                    self._walk(child, inner)
            return
        if kind is ast.Import:
            for a in node.names:
                top = a.name.split(".")[0]
                scope.bound.add(a.asname or top)
                self.imported[a.asname or top] = a.name if a.asname else top
            return
        if kind is ast.ImportFrom:
            for a in node.names:
                if a.name != "*":
                    scope.bound.add(a.asname or a.name)
                    if node.module and not node.level:
                        self.imported[a.asname or a.name] = f"{node.module}.{a.name}"
            return
        if kind in (ast.Global, ast.Nonlocal):
            scope.globals.update(node.names)
            return
        if kind is ast.ExceptHandler or kind is ast.MatchAs or kind is ast.MatchStar:
            if node.name:
                scope.bound.add(node.name)
                self.plain_bound.add(node.name)
        elif kind is ast.MatchMapping and node.rest:
            scope.bound.add(node.rest)
            self.plain_bound.add(node.rest)
        elif kind is ast.Assign:
            for target in node.targets:
                if type(target) is ast.Name:
                    self.alias_assigns.append((target.id, node.value))
        elif kind in (ast.AnnAssign, ast.NamedExpr):
            if node.value is not None and type(node.target) is ast.Name:
                self.alias_assigns.append((node.target.id, node.value))
        for child in ast.iter_child_nodes(node):
            self._walk(child, scope)


class _Visitor(ast.NodeVisitor):
    def __init__(self, tree: ast.Module, line_map: list[int], offset: int, depth: int):
        self.tree = tree
        self.line_map = line_map or [1]
        self.offset = offset
        self.depth = depth
        self.findings: list[Finding] = []
        self.flagged: set[int] = set()
        self.skip_displays: set[int] = set()
        self.scopes: list[_Scope] = []
        self.prep = _Prepass(tree)
        self.cell_imports = self.prep.imported
        self.aliases = self._collect_aliases()

    # ---------------------------------------------------------------- infrastructure

    def run(self) -> None:
        self.scopes.append(self.prep.scopes[id(self.tree)])
        self.visit(self.tree)

    def _scope_for(self, node: ast.AST) -> _Scope:
        scope = self.prep.scopes.get(id(node))
        if scope is None:  # a node parsed later (string annotation): scan it on its own
            extra = _Prepass(ast.Module(body=[ast.Expr(node)], type_ignores=[]))
            self.prep.scopes.update(extra.scopes)
            scope = self.prep.scopes.get(id(node)) or _Scope("lambda")
        return scope

    def _line(self, node: ast.AST) -> int:
        lineno = getattr(node, "lineno", 1) or 1
        line = self.line_map[min(lineno, len(self.line_map)) - 1]
        return line + self.offset

    def _flag(self, node: ast.AST, construct: str, reason: str) -> None:
        if id(node) in self.flagged:
            return
        self.flagged.add(id(node))
        self.findings.append(Finding(self._line(node), construct, reason))

    def _collect_aliases(self) -> dict[str, str]:
        """Names bound to modules (or things imported from them) anywhere in the cell."""
        plain_bound = self.prep.plain_bound
        aliases = {k: v for k, v in _DEFAULT_ALIASES.items() if k not in plain_bound}
        for name in _DEFAULT_FORBIDDEN_NAMES - plain_bound:
            aliases.setdefault(name, name)
        aliases.update(self.prep.imported)
        # Simple aliases: ``t = torch``, ``tt = torch.testing`` (two rounds for chains).
        for _ in range(2):
            for name, value in self.prep.alias_assigns:
                path = self._static_resolve(value, aliases)
                if path:
                    aliases[name] = path
        return aliases

    @staticmethod
    def _static_resolve(node: ast.AST | None, aliases: dict[str, str]) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name) and node.id in aliases:
            return ".".join([aliases[node.id], *reversed(parts)])
        return None

    def _is_local(self, name: str) -> bool:
        """Is ``name`` bound by an enclosing function (so not a module alias or a builtin)?"""
        for scope in reversed(self.scopes):
            if scope.kind == "module":
                return False
            if scope.kind == "class":
                if scope is self.scopes[-1] and name in scope.bound:
                    return True
                continue
            if name in scope.globals:
                return False
            if name in scope.bound:
                return True
        return False

    def _resolve(self, node: ast.AST | None) -> str | None:
        """Dotted module path of ``node`` if it is rooted at a module alias."""
        root = _root_name(node) if isinstance(node, (ast.Name, ast.Attribute)) else None
        if root is None or self._is_local(root):
            return None
        return self._static_resolve(node, self.aliases)

    def _module_kind(self, obj: ast.AST | str | None) -> str | None:
        """'sys', 'os', 'gc', ... if ``obj`` (an expression or a module path) is that module."""
        if isinstance(obj, str):
            path = obj
        else:
            path = self._resolve(obj)
            if path is None:
                if isinstance(obj, ast.Attribute):
                    path = "?." + obj.attr
                elif isinstance(obj, ast.Name) and not self._is_local(obj.id):
                    path = obj.id
                else:
                    return None
        last = path.rsplit(".", 1)[-1]
        if last in ("sys", "os", "gc", "threading", "events", "torch", "hub", "inspect", "mock"):
            return last
        if path in ("concurrent", "concurrent.futures"):
            return path
        return None

    def _self_available(self, name: str) -> bool:
        if name not in ("self", "cls"):
            return False
        for scope in reversed(self.scopes):
            if scope.kind in ("function", "lambda") and name in scope.params:
                return True
        return False

    def _binds_module(self, name: str) -> bool:
        for scope in reversed(self.scopes):
            if scope.kind == "comp":
                continue
            if scope.kind == "module":
                return True
            if scope.kind == "class":
                return False
            return name in scope.globals
        return True

    def _in_class_body(self) -> bool:
        return bool(self.scopes) and self.scopes[-1].kind == "class"

    # ---------------------------------------------------------------- scopes

    def visit_Module(self, node: ast.Module) -> None:
        for stmt in node.body:
            self.visit(stmt)

    def _visit_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._bind(node.name, node, "def")
        for deco in node.decorator_list:
            self.visit(deco)
        self._visit_arguments(node.args)
        if node.returns is not None:
            self._visit_annotation(node.returns)
        self.scopes.append(self._scope_for(node))
        body = node.body
        if body and isinstance(body[0], ast.Expr) and _is_str(body[0].value):
            body = body[1:]
        for stmt in body:
            self.visit(stmt)
        self.scopes.pop()

    visit_FunctionDef = _visit_function
    visit_AsyncFunctionDef = _visit_function

    def _visit_arguments(self, args: ast.arguments) -> None:
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if a is not None and a.annotation is not None:
                self._visit_annotation(a.annotation)

    def _visit_annotation(self, node: ast.AST) -> None:
        if _is_str(node):
            # String annotations are evaluated by typing.get_type_hints and friends.
            try:
                expr = ast.parse(node.value, mode="eval")
            except (SyntaxError, ValueError):
                return
            for sub in ast.walk(expr):
                if hasattr(sub, "lineno"):
                    sub.lineno = node.lineno
            self.visit(expr.body)
        else:
            self.visit(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_arguments(node.args)
        self.scopes.append(self._scope_for(node))
        self.visit(node.body)
        self.scopes.pop()

    def _visit_comprehension(self, node: ast.AST) -> None:
        generators = node.generators  # type: ignore[attr-defined]
        self.visit(generators[0].iter)
        self.scopes.append(self._scope_for(node))
        for i, gen in enumerate(generators):
            if i:
                self.visit(gen.iter)
            self.visit(gen.target)
            for cond in gen.ifs:
                self.visit(cond)
        if isinstance(node, ast.DictComp):
            self.visit(node.key)
            self.visit(node.value)
        else:
            self.visit(node.elt)  # type: ignore[attr-defined]
        self.scopes.pop()

    visit_ListComp = _visit_comprehension
    visit_SetComp = _visit_comprehension
    visit_DictComp = _visit_comprehension
    visit_GeneratorExp = _visit_comprehension

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._bind(node.name, node, "class")
        for deco in node.decorator_list:
            self.visit(deco)
        has_enum = any(self._last_name(b) in _ENUM_BASES for b in node.bases)
        defines_dunders = any(
            isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
            and _is_dunder(s.name)
            and s.name != "__init__"
            for s in node.body
        )
        for base in node.bases:
            self.visit(base)
            if isinstance(base, ast.Starred):
                self._flag(base, "class with computed bases", _R_METACLASS)
                continue
            if (
                isinstance(base, ast.Call)
                and isinstance(base.func, ast.Name)
                and base.func.id == "type"
            ):
                self._flag(base, "subclass of type(...)", _R_SUBCLASS.format(base="type"))
                continue
            last = self._last_name(base)
            if last in _FORBIDDEN_BASES and not (has_enum and not defines_dunders):
                shown = "torch.Tensor" if last in ("Tensor", "TensorBase", "_TensorBase") else last
                self._flag(base, f"subclass of {shown}", _R_SUBCLASS.format(base=shown))
        for kw in node.keywords:
            self.visit(kw.value)
            if kw.arg == "metaclass":
                self._flag(kw.value, "metaclass=", _R_METACLASS)
            elif kw.arg is None:
                self._flag(kw.value, "class with computed keywords", _R_METACLASS)
        self.scopes.append(self._scope_for(node))
        body = node.body
        if body and isinstance(body[0], ast.Expr) and _is_str(body[0].value):
            body = body[1:]
        for stmt in body:
            self.visit(stmt)
        self.scopes.pop()

    def _last_name(self, node: ast.AST) -> str | None:
        path = self._resolve(node)
        if path:
            return path.rsplit(".", 1)[-1]
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return node.attr
        if isinstance(node, ast.Subscript):
            return self._last_name(node.value)
        return None

    # ---------------------------------------------------------------- bindings

    def _bind(
        self,
        name: str,
        node: ast.AST,
        kind: str,
        value: ast.AST | None = None,
        unpacked: bool = False,
    ) -> None:
        """Check a name bound by ``kind`` (def, class, import, assign, augassign, for, ...)."""
        if self._in_class_body():
            if name in _FAKE_DUNDERS:
                self._flag(node, f"class defining {name}", _R_FAKE_METHOD.format(name=name))
            return
        if not self._binds_module(name):
            return
        if _is_dunder(name):
            if name not in _DUNDER_NAME_OK:
                self._flag(node, f"assignment to {name}", _R_DUNDER_NAME.format(name=name))
            return
        if name not in _builtin_names():
            return
        if not self._rebinding_ok(name, kind, value, unpacked):
            self._flag(node, f"rebinding built-in {name}", _R_REBIND.format(name=name))

    def _rebinding_ok(self, name: str, kind: str, value: ast.AST | None, unpacked: bool) -> bool:
        if name in _STRICT_BUILTINS or name in _exception_names():
            return False
        if kind in ("def", "class", "import"):
            return False
        lenient = name in _LENIENT_BUILTINS
        if kind == "for":
            return lenient and (value is None or not _contains_lambda(value))
        if kind in ("with", "except", "match"):
            return lenient
        if value is None:
            return False
        if _contains_lambda(value):
            return False
        if kind == "augassign" or unpacked:
            return True
        if lenient:
            if isinstance(value, (ast.Name, ast.Attribute, ast.Starred)):
                return False
            if isinstance(value, ast.Call):
                return _call_name(value) not in ("type", "partial")
            return True
        return _literal_like(value)

    def _bind_targets(self, target: ast.AST, kind: str, value: ast.AST | None) -> None:
        unpacked = not isinstance(target, ast.Name)
        for name_node in _target_names(target):
            self._bind(name_node.id, name_node, kind, value, unpacked)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        stored = self._passed_module(node.value, classes=False)
        if stored and any(isinstance(t, (ast.Attribute, ast.Subscript)) for t in node.targets):
            self._flag(
                node.value,
                f"storing {stored} in an attribute or item",
                _R_MODULE_PASSED.format(module=stored),
            )
        for target in node.targets:
            self._bind_targets(target, "assign", node.value)
            self._check_store_target(target, node.value)
            self.visit(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self._bind_targets(node.target, "augassign", node.value)
        self._check_store_target(node.target, node.value, how="augmented assignment to")
        self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._bind_targets(node.target, "assign", node.value)
            self._check_store_target(node.target, node.value)
        self._visit_annotation(node.annotation)
        self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._bind(node.target.id, node.target, "assign", node.value)
        self.visit(node.target)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._check_store_target(target, None, how="del")
            self.visit(target)

    def _visit_for(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._bind_targets(node.target, "for", node.iter)
        self._check_store_target(node.target, None)
        self.visit(node.target)
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)

    visit_For = _visit_for
    visit_AsyncFor = _visit_for

    def _visit_with(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._bind_targets(item.optional_vars, "with", None)
                self._check_store_target(item.optional_vars, None)
                self.visit(item.optional_vars)
        for stmt in node.body:
            self.visit(stmt)

    visit_With = _visit_with
    visit_AsyncWith = _visit_with

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self._bind(node.name, node, "except")
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self._bind(node.name, node, "match")
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._bind(node.name, node, "match")

    def visit_Expr(self, node: ast.Expr) -> None:
        # A bare string statement (docstring or comment-like) does nothing.
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, (str, bytes)):
            return
        self.visit(node.value)

    # ---------------------------------------------------------------- imports

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)
            self._bind(alias.asname or alias.name.split(".")[0], node, "import")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            return
        if module == "__future__":
            for alias in node.names:
                if alias.name not in _ALLOWED_FUTURE:
                    self._flag(
                        node,
                        f"from __future__ import {alias.name}",
                        _R_FUTURE.format(name=alias.name),
                    )
            return
        for alias in node.names:
            if alias.name == "*":
                if self._binds_module("*"):
                    self._flag(node, f"from {module} import *", _R_STAR)
                continue
            problem = self._read_problem(module, alias.name)
            if problem:
                self._flag(node, *problem)
            self._bind(alias.asname or alias.name, node, "import")
        allowed = _ALLOWED_FROM_IMPORTS.get(module)
        if allowed is None or not all(a.name in allowed for a in node.names):
            self._check_module(node, module)

    def _check_module(self, node: ast.AST, module: str) -> None:
        top = module.split(".")[0]
        if top == "builtins":
            self._flag(node, f"import {module}", _R_BUILTINS)
            return
        if top in _FORBIDDEN_MODULES:
            self._flag(node, f"import {module}", _R_IMPORT.format(what=_FORBIDDEN_MODULES[top]))
            return
        for prefix, what in _FORBIDDEN_SUBMODULES.items():
            if module == prefix or module.startswith(prefix + "."):
                self._flag(node, f"import {module}", _R_IMPORT.format(what=what))
                return
        if any(part.startswith("_") for part in module.split(".")):
            self._flag(node, f"import {module}", _R_PRIVATE.format(target=module))

    # ---------------------------------------------------------------- names and attributes

    def visit_Name(self, node: ast.Name) -> None:
        name = node.id
        if not isinstance(node.ctx, ast.Load) or self._is_local(name):
            return
        if name == "get_ipython":
            self._flag(node, "get_ipython()", _R_IPYTHON)
        elif _is_dunder(name):
            if name in ("__builtins__", "__import__"):
                self._flag(node, name, _R_BUILTINS)
            elif name not in _DUNDER_NAME_OK:
                self._flag(node, name, _R_DUNDER_NAME.format(name=name))
        elif name in _NAMESPACE_NAMES:
            self._flag(node, f"{name}()", _R_NAMESPACE.format(name=name))
        elif name in _EXEC_NAMES:
            self._flag(node, f"{name} used as a value", _R_EXEC.format(name=name))
        elif name in _REFLECTIVE:
            self._flag(node, f"{name} used as a value", _R_REFLECTIVE_VALUE.format(name=name))
        elif name in _OUTPUT_ATTRS:
            self._flag(node, f"{name}()", _R_OUTPUT)
        elif name == "breakpoint":
            self._flag(node, "breakpoint()", _R_BREAKPOINT)
        elif name in ("exit", "quit"):
            self._flag(node, f"{name}()", _R_EXIT)
        elif (
            name in _DEFAULT_FORBIDDEN_NAMES
            and name not in self.cell_imports
            and self.aliases.get(name) == name
            and name not in self.scopes[0].bound
        ):
            what = _FORBIDDEN_MODULES.get(name, name)
            self._flag(node, f"{name} module", _R_INTERNAL_MODULE.format(name=name, what=what))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        store = isinstance(node.ctx, (ast.Store, ast.Del))
        problem = self._read_problem(node.value, node.attr, store=store)
        if problem:
            self._flag(node, *problem)
        elif node.attr in _MODULES_DICT_METHODS and self._modules_dict(node.value):
            self._flag(node, f"{_dotted(node.value)}.{node.attr}", _R_SYS)
        self.visit(node.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self._modules_dict(node.value):
            self._flag(node, f"{_dotted(node.value)}[...]", _R_SYS)
        self.generic_visit(node)

    def _modules_dict(self, node: ast.AST) -> bool:
        """``something.modules`` used as a dict: ``sys.modules`` reached through another name."""
        if not (isinstance(node, ast.Attribute) and node.attr == "modules"):
            return False
        root = _root_name(node.value)
        return not (root is not None and self._self_available(root))

    def _passed_module(self, node: ast.AST, classes: bool) -> str | None:
        if not isinstance(node, (ast.Name, ast.Attribute)):
            return None
        path = self._resolve(node)
        if path in _PASSABLE_MODULES or (classes and path in _PASSABLE_CLASSES):
            return path
        return None

    def _visit_display(self, node: ast.AST) -> None:
        if id(node) not in self.skip_displays:
            for elt in getattr(node, "elts", None) or getattr(node, "values", []):
                path = self._passed_module(elt, classes=False)
                if path:
                    self._flag(
                        elt, f"{path} module in a container", _R_MODULE_PASSED.format(module=path)
                    )
        self.generic_visit(node)

    visit_List = _visit_display
    visit_Tuple = _visit_display
    visit_Set = _visit_display
    visit_Dict = _visit_display

    def _read_problem(
        self, obj: ast.AST | str, attr: str, store: bool = False
    ) -> tuple[str, str] | None:
        """Why reading (or, for a few names, writing) ``obj.attr`` is not allowed, if it isn't."""
        shown = obj if isinstance(obj, str) else _dotted(obj)
        target = f"{shown}.{attr}"
        if attr in _IPYTHON_ATTRS:
            return target, _R_IPYTHON
        if attr in _FRAME_ATTRS:
            return target, _R_FRAME
        if attr in _TRACE_ATTRS:
            return target, _R_TRACE
        if attr in _HOOK_ATTRS:
            return target, _R_SYS
        if attr in _GC_ATTRS:
            return target, _R_GC
        if attr in _NATIVE_ATTRS:
            return target, _R_NATIVE
        if attr in _STRING_EVAL_ATTRS:
            return target, _R_STRING_EVAL.format(name=attr)
        if attr in _OUTPUT_ATTRS and (isinstance(obj, str) or self._resolve(obj)):
            # IPython.display.clear_output; an ipywidgets Output's own method clears only itself
            return target, _R_OUTPUT
        if attr.startswith("register_module_"):
            return target, _R_HOOK
        if _OS_EXEC_RE.match(attr) or attr == "_exit":
            return target, _R_PROCESS if attr != "_exit" else _R_EXIT
        if _is_dunder(attr):
            if store or attr in _DUNDER_READ_OK:
                return None
            return target, _R_DUNDER.format(attr=attr)
        kind = self._module_kind(obj)
        if kind == "sys":
            if attr in _SYS_ATTRS:
                return target, (_R_EXIT if attr == "exit" else _R_SYS)
            if attr in _SYS_STREAMS and store:
                return target, _R_SYS
        elif kind == "os" and attr in _OS_ATTRS:
            return target, (_R_EXIT if attr in ("kill", "killpg", "abort") else _R_PROCESS)
        elif kind == "gc" and attr == "callbacks":
            return target, _R_GC
        elif kind == "events" and attr in ("register", "unregister"):
            return target, _R_IPYTHON
        elif kind == "mock":
            return target, _R_MOCK
        elif kind == "inspect" and attr not in _INSPECT_OK:
            return target, _R_FRAME
        elif kind in ("concurrent", "concurrent.futures") and attr not in _CONCURRENT_OK:
            return target, _R_IMPORT.format(what=f"concurrent ({attr})")
        elif kind == "torch" and attr in ("library", "package"):
            return target, _R_PRIVATE.format(target=target)
        elif kind == "hub" and attr in ("load", "load_state_dict_from_url", "list", "help"):
            return target, _R_IMPORT.format(what=_FORBIDDEN_SUBMODULES["torch.hub"])
        root = obj if isinstance(obj, str) else _root_name(obj)
        if attr in _MODULE_NAMED_ATTRS and not (root and self._self_available(root)):
            return target, _R_IMPORT.format(what=_FORBIDDEN_MODULES.get(attr, attr))
        if attr.startswith("_"):
            path = obj if isinstance(obj, str) else self._resolve(obj)
            if path:
                return f"{path}.{attr}", _R_PRIVATE.format(target=f"{path}.{attr}")
        return None

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            match = _FORBIDDEN_WORD_RE.search(value)
            if match:
                word = match.group(0)
                self._flag(node, f"string naming {word}", _R_STRING.format(word=word))
                return
            # A notebook's or grading file's name is flagged only where a file is opened,
            # copied or removed (visit_Call): printing "open lab 01.ipynb" is fine.

    # ---------------------------------------------------------------- stores (monkeypatching)

    def _check_store_target(
        self, target: ast.AST, value: ast.AST | None, how: str = "assignment to"
    ) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self._check_store_target(elt, None, how)
            return
        if isinstance(target, ast.Starred):
            self._check_store_target(target.value, None, how)
            return
        if isinstance(target, ast.Attribute):
            problem = self._store_problem(target.value, target.attr, value, how)
            if problem:
                self._flag(target, *problem)
        elif isinstance(target, ast.Subscript):
            # ``torch.__dict__[...] = ``, ``sys.modules[...] = `` are caught as attribute reads.
            pass

    def _store_problem(
        self, obj: ast.AST, attr: str, value: ast.AST | None, how: str
    ) -> tuple[str, str] | None:
        path = self._resolve(obj)
        if path:
            full = f"{path}.{attr}"
            if (
                how != "del"
                and value is not None
                and _literal_like(value)
                and full.startswith(_ALLOWED_MODULE_SETTINGS)
                and not _is_dunder(attr)
            ):
                return None
            return f"{how} {full}", _R_MONKEYPATCH.format(target=full)
        if _is_dunder(attr):
            if attr in _DUNDER_WRITE_OK:
                return None
            return f"{how} {_dotted(obj)}.{attr}", _R_DUNDER_STORE.format(attr=attr)
        if isinstance(obj, ast.Name) and self._self_available(obj.id):
            return None  # ``self.x = ...``; deeper chains (``self.lib.allclose``) are checked
        if attr in _INDIRECT_OK:
            return None
        construct = f"{how} {_dotted(obj)}.{attr}"
        if attr.startswith(("assert", "check")):
            return construct, _R_INDIRECT.format(attr=attr)
        protected = _protected_attrs()
        if attr in protected:
            if protected[attr] and value is not None and self._plain_value(value):
                return None
            return construct, _R_INDIRECT.format(attr=attr)
        return None

    def _plain_value(self, value: ast.AST) -> bool:
        """A value that does not stand in for a library function: literals, dtypes such as
        ``torch.float32``, new tensors (``torch.zeros(3)``) and layers (``nn.LayerNorm(8)``)."""
        if _literal_like(value):
            return True
        if isinstance(value, ast.Attribute):
            path = self._resolve(value)
            return bool(path) and path.startswith("torch.") and value.attr in _TORCH_DTYPES
        if isinstance(value, ast.Call) and not _contains_lambda(value):
            path = self._resolve(value.func) or ""
            last = path.rsplit(".", 1)[-1]
            if path.startswith(("torch.", "numpy.")) and last in _TENSOR_FACTORIES:
                return True
            return path.startswith("torch.nn.") and last[:1].isupper()
        return False

    # ---------------------------------------------------------------- calls

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if self._ipython_call(node):
            return
        name = func.id if isinstance(func, ast.Name) and not self._is_local(func.id) else None
        visit_func = True
        if name in _EXEC_NAMES:
            literal = bool(node.args) and isinstance(node.args[0], ast.Constant)
            construct = f"{name} of a literal string" if literal else f"{name} on a built string"
            self._flag(func, construct, _R_EXEC.format(name=f"{name}()"))
            visit_func = False
        elif name in _REFLECTIVE:
            self._check_reflective(node, name)
            visit_func = False
        elif name == "type" and len(node.args) == 3:
            self._flag(func, "type() with three arguments", _R_DYNAMIC_CLASS)
        self._check_call_extras(node)
        self._check_module_args(node, name)
        self._check_file_call(node)
        if visit_func:
            self.visit(func)
        for arg in node.args:
            self.visit(arg)
        for kw in node.keywords:
            self.visit(kw.value)

    def _check_file_call(self, node: ast.Call) -> None:
        """Files: a grading file named where one is opened, copied or removed; writing to a
        path computed at run time (the grader's files are found that way)."""
        func = node.func
        callee = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if callee not in _FILE_CALLS:
            return
        values = [a for a in node.args if not isinstance(a, ast.Starred)]
        values += [k.value for k in node.keywords]
        for value in values:
            for inner in ast.walk(value):
                if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
                    match = _GRADER_FILE_RE.search(inner.value)
                    if match:
                        word = match.group(0)
                        self._flag(inner, f"file {word}", _R_GRADER_FILES.format(word=word))
                        return
        if callee == "open" and node.args and not isinstance(node.args[0], ast.Constant):
            mode = node.args[1] if len(node.args) > 1 else None
            mode = mode or next((k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
                if set(mode.value) & set("wax+"):
                    self._flag(node, "open(<computed path>, 'w')", _R_COMPUTED_WRITE)

    def _check_module_args(self, node: ast.Call, name: str | None) -> None:
        callee = name or (node.func.id if isinstance(node.func, ast.Name) else None)
        values = [a.value if isinstance(a, ast.Starred) else a for a in node.args]
        values += [k.value for k in node.keywords]
        if callee in _MODULE_ARG_OK_CALLEES or callee in _REFLECTIVE:
            self.skip_displays.update(id(v) for v in values)
            return
        for value in values:
            path = self._passed_module(value, classes=True)
            if path:
                self._flag(
                    value,
                    f"passing {path} to {_dotted(node.func)}()",
                    _R_MODULE_PASSED.format(module=path),
                )

    def _check_reflective(self, node: ast.Call, name: str) -> None:
        args = node.args
        if len(args) < 2 or any(isinstance(a, ast.Starred) for a in args[:2]):
            self._flag(
                node.func,
                f"{name} with a computed name",
                _R_GETATTR_COMPUTED.format(name=f"{name}()"),
            )
            return
        obj, attr = args[0], args[1]
        root = _root_name(obj)
        if not _is_str(attr):
            library = (
                name in ("getattr", "hasattr")
                and root in _COMPUTED_GETATTR_ROOTS
                and not self._is_local(root)
            )
            if not library and not (root is not None and self._self_available(root)):
                self._flag(
                    node.func,
                    f"{name} with a computed name",
                    _R_GETATTR_COMPUTED.format(name=f"{name}()"),
                )
            return
        attr_name = attr.value
        if name in ("setattr", "delattr"):
            value = args[2] if name == "setattr" and len(args) > 2 else None
            how = "setattr on" if name == "setattr" else "delattr on"
            problem = self._store_problem(obj, attr_name, value, how)
            if problem is None and _is_dunder(attr_name) and attr_name not in _DUNDER_WRITE_OK:
                problem = (
                    f"{how} {_dotted(obj)}.{attr_name}",
                    _R_DUNDER_STORE.format(attr=attr_name),
                )
        else:
            problem = self._read_problem(obj, attr_name)
            if problem is None and attr_name in _GETATTR_FORBIDDEN_LITERALS:
                problem = (
                    f'{name}(..., "{attr_name}")',
                    _R_GETATTR_COMPUTED.format(name=f"{name}()"),
                )
        if problem:
            construct, reason = problem
            self._flag(node.func, f"{name}: {construct}", reason)

    def _check_call_extras(self, node: ast.Call) -> None:
        func = node.func
        path = self._resolve(func) if isinstance(func, (ast.Name, ast.Attribute)) else None
        called = _call_name(node)
        # operator.attrgetter / methodcaller with computed or forbidden names
        if path in ("operator.attrgetter", "operator.methodcaller"):
            for arg in node.args[:1] if called == "methodcaller" else node.args:
                names = arg.value.split(".") if _is_str(arg) else None
                if names is None or any(
                    self._read_problem("?", n) or n in _GETATTR_FORBIDDEN_LITERALS or _is_dunder(n)
                    for n in names
                ):
                    self._flag(
                        func,
                        f"{called} with a computed or forbidden name",
                        _R_GETATTR_COMPUTED.format(name=f"operator.{called}()"),
                    )
                    break
        # timeit module functions given code as text
        if path and path.split(".")[0] == "timeit" and called in ("timeit", "repeat", "Timer"):
            code_args = list(node.args[:2]) + [
                k.value for k in node.keywords if k.arg in ("stmt", "setup")
            ]
            if any(not isinstance(a, (ast.Lambda, ast.Name, ast.Attribute)) for a in code_args):
                self._flag(func, "timeit on a code string", _R_TIMEIT_STRING)
        # classes built at run time by a metaclass call: ABCMeta("X", (), {...})
        last = (path or "").rsplit(".", 1)[-1] or called or ""
        if len(node.args) == 3 and (last.endswith("Meta") or last == "EnumType"):
            self._flag(func, f"{last}() with three arguments", _R_DYNAMIC_CLASS)
        # output cleared before displaying
        if called == "display" and any(
            k.arg == "clear" and not (isinstance(k.value, ast.Constant) and not k.value.value)
            for k in node.keywords
        ):
            self._flag(func, "display(clear=True)", _R_OUTPUT)
        # pickle-based loading switched on
        for kw in node.keywords:
            if kw.arg is not None and _is_dunder(kw.arg):
                self._flag(kw.value, f"keyword {kw.arg}=", _R_DUNDER.format(attr=kw.arg))
            elif (
                kw.arg == "weights_only"
                and isinstance(kw.value, ast.Constant)
                and kw.value.value is False
            ):
                self._flag(
                    kw.value, "weights_only=False", _R_PICKLE.format(kw="weights_only=False")
                )
            elif (
                kw.arg == "allow_pickle"
                and isinstance(kw.value, ast.Constant)
                and kw.value.value is True
            ):
                self._flag(kw.value, "allow_pickle=True", _R_PICKLE.format(kw="allow_pickle=True"))
        # writing Python source files (which a later import could pick up)
        if self._writes_code_file(node, called, path):
            self._flag(func, "writing a code file", _R_FILE_CODE)

    def _writes_code_file(self, node: ast.Call, called: str | None, path: str | None) -> bool:
        def code_file(arg: ast.AST) -> bool:
            return _is_str(arg) and bool(_CODE_FILE_RE.search(arg.value))

        args = [*node.args, *(k.value for k in node.keywords)]
        if called == "open" and not path:
            return bool(node.args) and code_file(node.args[0]) and _open_for_writing(node)
        if called in ("write_text", "write_bytes", "open") and isinstance(node.func, ast.Attribute):
            return any(code_file(n) for n in ast.walk(node.func.value))
        if path and path.split(".")[0] in ("os", "shutil") and called in _CODE_FILE_CALLS:
            return any(code_file(a) for a in args)
        return False

    # ---------------------------------------------------------------- IPython syntax

    def _ipython_call(self, node: ast.Call) -> bool:
        """Handle ``get_ipython().method(...)``, the form IPython syntax is rewritten to."""
        func = node.func
        if not (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Call)
            and isinstance(func.value.func, ast.Name)
            and func.value.func.id == "get_ipython"
            and not func.value.args
            and not func.value.keywords
        ):
            return False
        if self._is_local("get_ipython"):
            return False
        args = node.args
        literal = not node.keywords and all(_is_str(a) for a in args)
        method = func.attr
        if method == "run_line_magic" and literal and len(args) == 2:
            self._line_magic(node, args[0].value, args[1].value)
        elif method == "run_cell_magic" and literal and len(args) == 3:
            self._cell_magic(node, args[0].value, args[1].value, args[2].value)
        elif method == "show_usage" and not args and not node.keywords:
            pass  # a lone ``?``: IPython's help text
        elif method in ("system", "getoutput"):
            shown = args[0].value if args and _is_str(args[0]) else "..."
            self._flag(node, f"!{shown}"[:60] if shown else "!shell command", _R_SHELL)
        else:
            return False
        return True

    def _line_magic(self, node: ast.Call, name: str, line: str) -> None:
        here = self._line(node)
        if name == "time":
            self._scan_magic_code(node, line, here - 1, "%time")
        elif name == "timeit":
            self._scan_magic_code(node, _timeit_statement(line), here - 1, "%timeit")
        elif name == "matplotlib":
            if not re.fullmatch(r"\s*(?:-l|--list|[A-Za-z0-9_]+)?\s*", line):
                self._flag(node, f"%matplotlib {line.strip()}"[:60], _R_MAGIC)
        elif name in ("pinfo", "pinfo2"):
            if not re.fullmatch(r"\s*(?:[A-Za-z_][\w.]*)?\s*", line):
                self._flag(node, f"%{name} {line.strip()}"[:60], _R_MAGIC)
        elif name in _SHELL_ALIAS_MAGICS:
            self._flag(node, f"%{name} (shell command)", _R_SHELL)
        else:
            self._flag(node, f"%{name} magic", _R_MAGIC)

    def _cell_magic(self, node: ast.Call, name: str, line: str, body: str) -> None:
        here = self._line(node)
        if name not in _ALLOWED_CELL_MAGICS:
            reason = _R_SHELL if name in ("bash", "sh", "script", "system", "sx", "!") else _R_MAGIC
            self._flag(node, f"%%{name} cell magic", reason)
            return
        setup = _timeit_statement(line) if name == "timeit" else line
        if setup.strip():
            self._scan_magic_code(node, setup, here - 1, f"%%{name}")
        self._scan_magic_code(node, body, here, f"%%{name}")

    def _scan_magic_code(self, node: ast.AST, code: str, offset: int, magic: str) -> None:
        if self.depth >= _MAX_MAGIC_DEPTH:
            self._flag(node, f"{magic} nested too deeply", _R_TOO_DEEP)
            return
        from .safeguard_scan import _scan  # a cycle: safeguard_scan imports this module

        found = _scan(code, offset, self.depth + 1)
        if found is None:
            # Options the kernel would strip (e.g. ``--no-raise-error``) and that we did not.
            stripped = re.sub(r"^\s*(?:-\S+\s+)*", "", code, count=1)
            found = _scan(stripped, offset, self.depth + 1) if stripped != code else None
        # Code that does not parse fails in the kernel too, and runs nothing.
        self.findings.extend(found or [])


# --------------------------------------------------------------------------------------------
# Module-level helpers used by the visitor
# --------------------------------------------------------------------------------------------


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal_like(value: ast.AST) -> bool:
    """A value that cannot be a function or a class: literals, displays, arithmetic."""
    if isinstance(value, ast.Constant):
        return value.value is not Ellipsis
    if isinstance(value, ast.JoinedStr):
        return True
    if isinstance(value, (ast.Tuple, ast.List, ast.Set)):
        return all(_literal_like(e) for e in value.elts)
    if isinstance(value, ast.Dict):
        return all(k is None or _literal_like(k) for k in value.keys) and all(
            _literal_like(v) for v in value.values
        )
    if isinstance(value, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        return not _contains_lambda(value)
    if isinstance(value, ast.UnaryOp):
        return _literal_like(value.operand)
    if isinstance(value, (ast.BinOp, ast.Compare)):
        return not _contains_lambda(value)
    if isinstance(value, ast.BoolOp):
        return all(_literal_like(v) for v in value.values)
    if isinstance(value, ast.IfExp):
        return _literal_like(value.body) and _literal_like(value.orelse)
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
        return value.func.id in _SAFE_VALUE_CALLS and not _contains_lambda(value)
    return False


def _open_for_writing(node: ast.Call) -> bool:
    mode = (
        node.args[1]
        if len(node.args) > 1
        else next((k.value for k in node.keywords if k.arg == "mode"), None)
    )
    return _is_str(mode) and any(c in mode.value for c in "wax+")


class _OptionsOnly:
    options_table: dict[str, str] = {}


def _timeit_statement(line: str) -> str:
    """The statement ``%timeit`` runs, with its options removed the way IPython removes them."""
    try:
        from IPython.core.magic import Magics

        _opts, stmt = Magics.parse_options(  # type: ignore[arg-type]
            _OptionsOnly(),
            line,
            "n:r:tcp:qo",
            posix=False,
            strict=False,
            preserve_non_opts=True,
        )
        return stmt
    except Exception:  # noqa: BLE001 - the magic would fail and run nothing
        return line
