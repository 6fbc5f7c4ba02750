"""What the grading kernel leaves out to grade faster (issue 21), and that nothing graded
needs it."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from helpers import LABS, ROOT

from course_utils.tooling.kernel_boot import NOT_WHILE_GRADING


def _cells(lab: str) -> list[tuple[str, str]]:
    """(header, code) of each cell of a lab's jupytext source."""
    text = (ROOT / "solutions" / lab / f"{lab}.py").read_text(encoding="utf-8")
    cells, header, lines = [], "", []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append((header, "\n".join(lines)))
            header, lines = line, []
        else:
            lines.append(line)
    cells.append((header, "\n".join(lines)))
    return [(h, c) for h, c in cells if h.startswith("# %%") and "[markdown]" not in h]


def _imports(tree: ast.AST) -> list[ast.stmt]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(name.partition(".")[0] in NOT_WHILE_GRADING for name in names):
            found.append(node)
    return found


def _guarded(tree: ast.AST, node: ast.stmt) -> bool:
    """node sits in the body of a try whose handlers catch ImportError."""
    for parent in ast.walk(tree):
        if not isinstance(parent, ast.Try) or not any(node is n for n in ast.walk(parent)):
            continue
        if not any(node is n for stmt in parent.body for n in ast.walk(stmt)):
            continue
        for handler in parent.handlers:
            caught = handler.type
            names = [caught] if not isinstance(caught, ast.Tuple) else caught.elts
            if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError")
                   for n in names):  # fmt: skip
                return True
    return False


@pytest.mark.parametrize("lab", LABS)
def test_packages_left_out_of_grading_are_only_in_demonstrations_that_skip_without_them(lab):
    for header, code in _cells(lab):
        tree = ast.parse(code)
        for node in _imports(tree):
            where = f"{lab}, line {node.lineno} of the cell {header!r}"
            # Never in an exercise; a test cell (lab 09's comparisons with Hugging Face) may,
            # guarded: while grading it skips that comparison and its own references decide.
            assert "exercise=" not in header, where
            assert _guarded(tree, node), f"{where}: not inside try/except ImportError"


def test_the_grading_kernel_does_not_load_them():
    script = (
        "import sys\n"
        "from course_utils.tooling.kernel_boot import SkipWhileGrading\n"
        "sys.meta_path.insert(0, SkipWhileGrading())\n"
        "import torch, json\n"  # everything else loads as usual
        "try:\n"
        "    from transformers import BertConfig\n"
        "except ImportError as error:\n"
        "    print('skipped:', error)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert "skipped: No module named 'transformers' (not loaded while grading)" in out.stdout
