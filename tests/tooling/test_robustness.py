"""Issue 21, robustness of the grading engine: an output flood, an edited locked test cell, and
files that every later Python runs (``sitecustomize.py``, ``usercustomize.py``, a file in
torch's own folder) written by a submission graded without the sandbox. Each technique scores
zero, through ``nbgrader autograde`` (the instructor's path) and through ``grade``, and an
honest wrong and an honest correct student graded after it keep their scores.

Lab 00 (3 points), smoke profile. The autograde path grades 7 submissions in one temporary
course; the ``grade`` path 4 notebooks. About 90 s of CPU in all."""

from __future__ import annotations

import copy
import json
import site
from pathlib import Path

import pytest
from helpers import load, replace_solution, save, solution_path, student_path, with_extra_cell

from course_utils.tooling import sandbox
from course_utils.tooling.course_dir import temporary_course
from course_utils.tooling.grading import grade

pytestmark = pytest.mark.slow
LAB = "00_start_here"
WRONG = {"pick_device": "def pick_device(prefer=None):\n    return None\n",
         "bigram_counts": "def bigram_counts(ids, vocab_size):\n    return None\n"}  # fmt: skip
FLOOD = "print('x' * 50_000_000)\n"  # 50 MB in one cell (the probe printed 300 MB)


def _wrong() -> dict:
    nb = load(student_path(LAB))
    for grade_id, source in WRONG.items():
        nb = replace_solution(nb, grade_id, source)
    return nb


def _flood() -> dict:
    """Both exercises solved, but exercise 1's function floods whenever it is called (so in
    its test cell too)."""
    nb = load(solution_path(LAB))
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "pick_device":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = source.replace('    """\n', '    """\n    ' + FLOOD, 1)
            assert FLOOD in cell["source"]
    return nb


def _edited_test_cell() -> dict:
    """Wrong answers, and the locked test cells rewritten to pass (metadata edited too)."""
    nb = _wrong()
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cell["source"] = "print('✓ all tests passed')\n"
            meta.update(solution=True, locked=False, checksum="edited")
    return nb


def _renamed() -> dict:
    """The solution with exercise 2's grade id edited (its cell id kept)."""
    nb = load(solution_path(LAB))
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "bigram_counts":
            cell["metadata"]["nbgrader"]["grade_id"] = "my_bigrams"
    return nb


def _writer(path: Path, text: str) -> dict:
    cell = (
        f"import os\n\ntry:\n    os.makedirs({str(path.parent)!r}, exist_ok=True)\n"
        f"    open({str(path)!r}, 'a').write({text!r})\nexcept OSError:\n    pass\n"
    )
    return with_extra_cell(_wrong(), cell, index=2)


def _targets() -> dict[str, Path]:
    import torch

    return {
        "sitecustomize": Path(site.getsitepackages()[0]) / "sitecustomize.py",
        "usercustomize": Path(site.getusersitepackages()) / "usercustomize.py",
        "torch-file": Path(torch.__file__).parent / "version.py",
    }


PAYLOAD = "\nimport builtins\nbuiltins.course_tampered = True\n"


@pytest.fixture
def guarded_files():
    """Back up what the writers aim at, and put it back whatever happens."""
    saved = {name: (p, p.read_bytes() if p.exists() else None) for name, p in _targets().items()}
    missing = [p.parent for p, _ in saved.values() if not p.parent.exists()]
    yield saved
    for path, data in saved.values():
        if data is None:
            path.unlink(missing_ok=True)
        elif not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    for folder in missing:  # the user's site-packages, made by the writer: remove it again
        while folder.exists() and not any(folder.iterdir()) and folder != Path.home():
            folder.rmdir()
            folder = folder.parent


def _students(targets: dict[str, Path]) -> list[tuple[str, dict]]:
    return [
        ("flood", _flood()),
        ("edited", _edited_test_cell()),
        ("renamed", _renamed()),
        *[(name, _writer(path, PAYLOAD)) for name, path in targets.items()],
        ("wrong", _wrong()),
        ("ada", load(solution_path(LAB))),
    ]


def _check(
    scores: dict[str, float], flags: dict[str, list], full: float, saved: dict, tampered=True
) -> None:
    assert full == 3
    assert scores["ada"] == full and scores["renamed"] == full, scores
    assert scores["wrong"] == 0 and scores["edited"] == 0, scores
    assert scores["flood"] >= 2, scores  # the flood may cost exercise 1 (time), nothing else
    for name in saved:
        assert scores[name] == 0, (name, scores)
        # Found by the watch (tampered), or, with the scanner on, not run at all.
        assert any(f.get("tampered") or not tampered for f in flags[name]), (name, flags[name])
    for path, data in saved.values():
        assert (path.read_bytes() if path.exists() else None) == data, path


def test_nbgrader_autograde_path(guarded_files, monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX", "off")
    monkeypatch.setenv("COURSE_OUTPUT_CAP", "100000")
    from course_utils import config

    root = Path(config.__file__).resolve().parents[1]
    students = _students({n: p for n, (p, _) in guarded_files.items()})
    scores, flags = {}, {}
    with temporary_course(root, [LAB], scan=False) as (api, course):  # the watch alone
        for student, nb in students:
            save(nb, course / "submitted" / student / LAB / f"{LAB}.ipynb")
            outcome = api.autograde(LAB, student, force=True, create=True)
            assert outcome["success"], (student, outcome["log"], outcome.get("error"))
        with api.gradebook as gb:
            for student, _ in students:
                sub = gb.find_submission_notebook(LAB, LAB, student)
                scores[student] = sub.code_score
                full = sub.max_code_score
                graded = json.loads(
                    (course / "autograded" / student / LAB / f"{LAB}.ipynb").read_text()
                )
                flags[student] = graded["metadata"].get("course_safeguard", {}).get("flags", [])
                if student == "flood":
                    text = json.dumps(graded)
                    assert len(text) < 2_000_000 and "[output cut:" in text
    _check(scores, flags, full, guarded_files)


def test_grade_path(guarded_files, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_SANDBOX", "off")
    monkeypatch.setenv("COURSE_OUTPUT_CAP", "100000")
    chosen = ["flood", "edited", "sitecustomize", "torch-file", "wrong", "ada"]
    students = dict(_students({n: p for n, (p, _) in guarded_files.items()}))
    scores, flags = {}, {}
    for name in chosen:
        path = save(copy.deepcopy(students[name]), tmp_path / name / f"{LAB}.ipynb")
        before = path.read_bytes()
        report = grade(path, lab=LAB, progress=lambda line: None)
        assert path.read_bytes() == before
        scores[name], flags[name] = report.score, report.flags
        if name == "edited":
            assert any("grading settings edited" in n for n in report.notes), report.notes
    saved = {k: v for k, v in guarded_files.items() if k in chosen}
    scores["renamed"] = 3  # graded through nbgrader autograde above
    _check(scores, flags, 3, saved, tampered=False)


def test_watch_sees_startup_files_and_packages(tmp_path):
    """The fallback's watch, alone: created, changed and deleted files are found and undone."""
    startup, package = tmp_path / "site", tmp_path / "pkg"
    startup.mkdir()
    package.mkdir()
    (package / "mod.py").write_text("x = 1\n")
    (package / "lib.so").write_bytes(b"\0" * 10)
    watch = sandbox.Watch([], [], [startup], [package])
    (startup / "sitecustomize.py").write_text("import os\n")
    (startup / "usercustomize.py").write_text("import os\n")
    (startup / "evil.pth").write_text("import os\n")
    (package / "mod.py").write_text("x = 2\n")
    (package / "new.py").write_text("y = 1\n")
    (package / "lib.so").write_bytes(b"\1" * 11)
    changes = watch.restore()
    assert len(changes) == 6, changes
    assert any("NOT undone" in c and "lib.so" in c for c in changes), changes
    assert sorted(p.name for p in startup.iterdir()) == []
    assert (package / "mod.py").read_text() == "x = 1\n" and not (package / "new.py").exists()
