"""Issue 21: course_utils/tooling has no import circle (it had course_dir -> nbgrader_setup ->
release -> course_dir), apart from the scanner's one call back into itself. Reads the
modules' imports (also those inside functions) with ast; milliseconds."""

from __future__ import annotations

import ast
from pathlib import Path

TOOLING = Path(__file__).resolve().parents[2] / "course_utils" / "tooling"


def _graph() -> dict[str, set[str]]:
    modules = {p.stem for p in TOOLING.glob("*.py")}
    graph = {}
    for name in modules:
        tree = ast.parse((TOOLING / f"{name}.py").read_text(encoding="utf-8"))
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(a.name for a in node.names)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                for full in names:
                    if full.startswith("course_utils.tooling."):
                        found.add(full.split(".")[2])
        graph[name] = (found & modules) - {name}
    return graph


# The scanner scans code found inside code (exec of a literal string) by calling itself back:
# one deliberate import inside a function (safeguard_visitor -> safeguard_scan).
RECURSION = {("safeguard_visitor", "safeguard_scan")}


def test_tooling_modules_import_one_way():
    graph = _graph()
    for module, imported in RECURSION:
        graph[module].discard(imported)
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join([*path, node, nxt]))
            if not state.get(nxt):
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if not state.get(node):
            visit(node, [])
    assert "release" not in graph["nbgrader_setup"] and "course_dir" in graph["release"]
