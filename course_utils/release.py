"""``python -m course_utils release``: regenerate ``notebooks/`` from ``solutions/``.

The student notebooks are nbgrader's release of the solution notebooks: solutions replaced by
``raise NotImplementedError()``, hidden tests removed, cells locked. ``--check`` writes
nothing and names the notebooks that drifted; CI runs it.

A learner may be working in ``notebooks/`` itself. So a notebook there that looks worked on
(it has outputs or executed cells, or its exercise cells differ from the fresh release) is
never overwritten unless ``--force``, and even then it is first copied to a backup.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .course_dir import CourseError, temporary_course


@dataclass
class ReleaseResult:
    changed: list[Path] = field(default_factory=list)  # written (or, with check, stale)
    kept: list[Path] = field(default_factory=list)  # looked worked on: left alone
    backups: list[Path] = field(default_factory=list)


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
                if existing is not None and _looks_worked_on(existing, fresh):
                    if not force:
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
