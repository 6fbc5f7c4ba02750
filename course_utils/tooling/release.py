"""``python -m course_utils release``: regenerate ``notebooks/`` from ``solutions/``.

The student notebooks are nbgrader's release of the solution notebooks: solutions replaced by
a placeholder that names its exercise (``raise NotImplementedError("Exercise 2 (merge): replace
this line with your code")``, see :mod:`course_utils.exercises`), hidden tests removed, cells
locked. ``--check`` writes
nothing and names the notebooks that drifted; CI runs it.

A learner may be working in ``notebooks/`` itself. So a notebook there is replaced only when
it is an earlier release: committed to git and unchanged, or free of any sign of work (no
outputs or executed cells, exercise cells as released, no cells of its own). Otherwise it is
kept unless ``--force``, and even then it is first copied to a backup.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import config
from .course_dir import CourseError, temporary_course


@dataclass
class ReleaseResult:
    changed: list[Path] = field(default_factory=list)  # written (or, with check, stale)
    kept: list[Path] = field(default_factory=list)  # looked worked on: left alone
    backups: list[Path] = field(default_factory=list)


def _committed_and_unchanged(path: Path) -> bool:
    """True when git tracks ``path`` and it has no local changes: an earlier release."""
    try:
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", path.name],
            cwd=path.parent,
            capture_output=True,
            timeout=30,
        )
        if tracked.returncode != 0:
            return False
        diff = subprocess.run(
            ["git", "diff", "--quiet", "HEAD", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            timeout=30,
        )
        return diff.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _has_run(existing: str) -> bool:
    """Outputs or execution counts: a learner ran it (a release never has either)."""
    try:
        cells = json.loads(existing).get("cells", [])
    except (json.JSONDecodeError, AttributeError):
        return True
    return any(c.get("outputs") or c.get("execution_count") for c in cells)


def _looks_worked_on(existing: str, fresh: str) -> bool:
    try:
        old, new = json.loads(existing), json.loads(fresh)
    except json.JSONDecodeError:
        return True
    for cell in old.get("cells", []):
        if cell.get("outputs") or cell.get("execution_count"):
            return True

    def solutions(nb):
        return {
            c.get("id"): c.get("source")
            for c in nb.get("cells", [])
            if c.get("metadata", {}).get("nbgrader", {}).get("solution")
        }

    return solutions(old) != solutions(new) or len(old.get("cells", [])) != len(new["cells"])


def release(
    root: Path,
    labs: list[str] | None = None,
    *,
    output: Path | None = None,
    check: bool = False,
    force: bool = False,
) -> ReleaseResult:
    root = Path(root).resolve()
    names = list(labs) if labs else list(config.LAB_NAMES)
    for name in names:
        try:
            config.lab(name)
        except KeyError as error:
            raise CourseError(error.args[0]) from None
    output = Path(output).resolve() if output else root / "notebooks"
    if output.exists() and not output.is_dir():
        raise CourseError(f"--output {output} is a file; give the folder to release into")
    solutions = (root / "solutions").resolve()
    if output == solutions or solutions in output.parents:
        raise CourseError(
            f"refusing to write the release into {output}: that is inside solutions/, the "
            "instructor's source; pick another folder (the default is notebooks/)"
        )
    result = ReleaseResult()
    with temporary_course(root, names) as (_api, course):
        for name in names:
            released = course / "release" / name
            for fresh_path in sorted(released.rglob("*")):
                if not fresh_path.is_file():
                    continue
                target = output / name / fresh_path.relative_to(released)
                fresh = fresh_path.read_text(encoding="utf-8")
                existing = target.read_text(encoding="utf-8") if target.exists() else None
                if existing == fresh:
                    continue
                if check:
                    result.changed.append(target)
                    continue
                committed = existing is not None and _committed_and_unchanged(target)
                if existing is not None and (
                    _has_run(existing) if committed else _looks_worked_on(existing, fresh)
                ):
                    # A learner's work, committed or not, is never replaced without a backup;
                    # uncommitted work is kept unless --force.
                    if not force and not committed:
                        result.kept.append(target)
                        continue
                    backup = target.with_name(
                        f"{target.stem}.backup-{time.strftime('%Y%m%d-%H%M%S')}{target.suffix}"
                    )
                    shutil.copy2(target, backup)
                    result.backups.append(backup)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(fresh, encoding="utf-8")
                result.changed.append(target)
    return result
