"""Shared helpers for the test suite (imported as ``helpers``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from course_utils import config

ROOT = Path(__file__).resolve().parents[1]
LABS = list(config.LAB_NAMES)


def solution_path(lab: str) -> Path:
    return ROOT / "solutions" / lab / f"{lab}.ipynb"


def student_path(lab: str) -> Path:
    return ROOT / "notebooks" / lab / f"{lab}.ipynb"


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save(nb: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def with_extra_cell(nb: dict, source: str, index: int = 2) -> dict:
    """A copy of ``nb`` with one code cell a learner added at ``index``."""
    nb = copy.deepcopy(nb)
    nb["cells"].insert(
        index,
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "added-by-learner",
            "metadata": {},
            "outputs": [],
            "source": source,
        },
    )
    return nb


def replace_solution(nb: dict, grade_id: str, source: str) -> dict:
    """A copy of ``nb`` whose exercise cell ``grade_id`` holds ``source``."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            cell["source"] = source
            return nb
    raise KeyError(grade_id)


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600):
    """Run ``python -m course_utils ARGS``; return the CompletedProcess (text, never raises)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "course_utils", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
