"""Grading holds under attack: the techniques of issue 11, run for real (scanner off), score
zero and leave every other submission's score and the course's files unchanged; in the
sandbox and, for the four that write files, in the fallback without a sandbox too. The
control shows that without the protection the same techniques score marks."""

from __future__ import annotations

import json
import os
import shutil
import site
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import ROOT, load, replace_solution, solution_path, student_path, with_extra_cell

from course_utils.tooling import safeguard, sandbox
from course_utils.tooling.course_dir import temporary_course

pytestmark = pytest.mark.slow
LAB = "00_start_here"
PTH = "zz_course_isolation_test.pth"
needs_bwrap = pytest.mark.skipif(
    bool(sandbox.sandbox_problem()), reason=f"no sandbox here: {sandbox.sandbox_problem()}"
)

# Wrong answers: every technique tries to score them as right.
WRONG = {"pick_device": "def pick_device(prefer=None):\n    return None\n",
         "bigram_counts": "def bigram_counts(ids, vocab_size):\n    return None\n"}  # fmt: skip
PERMISSIVE = "class CheckFailed(AssertionError):\n    pass\n\n\n" + "".join(
    f"def {n}(*args, **kwargs):\n    return None\n\n\n"
    for n in (
        "begin_test",
        "check_tensor",
        "check_shape",
        "check_equal",
        "check_true",
        "check_raises",
    )
)
FAKE = (
    "import types\n\nfake = types.ModuleType('course_utils.checks')\n"
    f"exec({PERMISSIVE!r}, vars(fake))\n"
)

# In-kernel techniques: (name, the cell, where it goes: after this cell index).
IN_KERNEL = [
    ("sys-modules-through-an-attribute",
     FAKE + "import os\n\n\ndef helper():\n    return os.sys\n\n\n"
     "helper().modules['course_utils.checks'] = fake\n", 2),
    ("mock-from-a-test-cell",
     "for name in ('check_tensor', 'check_shape', 'check_equal', 'check_true'):\n"
     "    mock.patch(f'course_utils.checks.{name}', lambda *a, **k: None).start()\n", 9),
    ("thread-reinstalls-a-fake",
     FAKE + "import sys\nimport threading\nimport time\n\n\ndef keep():\n    while True:\n"
     "        sys.modules['course_utils.checks'] = fake\n        time.sleep(0.0005)\n\n\n"
     "threading.Thread(target=keep, daemon=True).start()\n", 2),
    ("reload-after-a-rewrite",
     "import importlib\n\nimport course_utils.checks\n\ntry:\n"
     "    with open(course_utils.checks.__file__, 'w') as f:\n"
     f"        f.write({PERMISSIVE!r})\nexcept OSError:\n    pass\n"
     "importlib.reload(course_utils.checks)\n", 2),
]  # fmt: skip


def writers(root: Path, course: Path) -> list[tuple[str, str]]:
    """The four techniques that write files later gradings read, aimed at absolute paths (the
    strongest case: the learner knows where the course lives)."""
    solution = root / "solutions" / LAB / f"{LAB}.ipynb"
    source = course / "source" / LAB / f"{LAB}.ipynb"
    return [
        ("rewrite-solutions",
         f"for path in ({str(solution)!r}, {str(source)!r}):\n    try:\n"
         "        open(path, 'w').write('{}')\n    except OSError:\n        pass\n"),
        ("gradebook-manual-score",
         "import sqlite3\n\ntry:\n"
         f"    db = sqlite3.connect({str(course / 'gradebook.db')!r})\n"
         "    db.execute('UPDATE grade SET manual_score = 0')\n    db.commit()\n"
         "except Exception:\n    pass\n"),
        ("rewrite-the-package",
         f"try:\n    open({str(root / 'course_utils' / 'checks.py')!r}, 'w')"
         f".write({PERMISSIVE!r})\n"
         "except OSError:\n    pass\n"),
        ("pth-file",
         "import site\n\ntry:\n"
         f"    open(site.getsitepackages()[0] + '/{PTH}', 'w').write('import os\\n')\n"
         "except OSError:\n    pass\n"),
    ]  # fmt: skip


def _attack(name_cell_index: tuple) -> dict:
    name, cell, index = name_cell_index
    nb = load(student_path(LAB))
    for grade_id, source in WRONG.items():
        nb = replace_solution(nb, grade_id, source)
    return with_extra_cell(nb, cell, index=index)


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    """A copy of the course (lab 00's solution and the package) that attacks may aim at."""
    root = tmp_path / "course"
    (root / "solutions" / LAB).mkdir(parents=True)
    shutil.copy2(solution_path(LAB), root / "solutions" / LAB)
    shutil.copy2(ROOT / "nbgrader_config.py", root)
    shutil.copytree(
        sandbox.PACKAGE_DIR, root / "course_utils", ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.setattr(sandbox, "PACKAGE_DIR", root / "course_utils")
    monkeypatch.setattr(safeguard, "PACKAGE_DIR", root / "course_utils")
    yield root
    (Path(site.getsitepackages()[0]) / PTH).unlink(missing_ok=True)


def _digests(root: Path) -> dict[str, bytes]:
    files = [root / "solutions" / LAB / f"{LAB}.ipynb", root / "course_utils" / "checks.py"]
    return {str(p): p.read_bytes() for p in files}


def _run(root: Path, students: list[tuple[str, object]], **options) -> dict[str, tuple]:
    """Autograde students in order (each value: a notebook, or a function of (root, course)
    giving one); return {student: (code score, max, flags)}; check the gradebook after each."""
    results = {}
    with temporary_course(root, [LAB], **options) as (api, course):
        for student, nb in students:
            if callable(nb):
                nb = nb(root, course)
            target = course / "submitted" / student / LAB / f"{LAB}.ipynb"
            target.parent.mkdir(parents=True)
            target.write_text(json.dumps(nb))
            outcome = api.autograde(LAB, student, force=True, create=True)
            assert outcome["success"], outcome["log"]
        with api.gradebook as gb:
            for student, _ in students:
                sub = gb.find_submission_notebook(LAB, LAB, student)
                graded = json.loads(
                    (course / "autograded" / student / LAB / f"{LAB}.ipynb").read_text()
                )
                flags = graded["metadata"].get("course_safeguard", {}).get("flags", [])
                results[student] = (sub.code_score, sub.max_code_score, flags)
        with sqlite3.connect(course / "gradebook.db") as db:
            assert (
                db.execute("SELECT COUNT(*) FROM grade WHERE manual_score = 0").fetchone()[0] == 0
            )
    return results


def _writer(index: int):
    def make(root, course):
        name, cell = writers(root, course)[index]
        return _attack((name, cell, 2))

    return make


def _students() -> list[tuple[str, object]]:
    students = [("ada", load(solution_path(LAB)))]
    students += [(f"w{i}", _writer(i)) for i in range(4)]
    students += [
        ("wrong", _attack(("no-attack", "pass", 2))),  # graded after the attacks
        ("bob", load(student_path(LAB))),
        ("cy", load(solution_path(LAB))),
    ]
    return students


def _assert_held(results, root, before):
    full = results["ada"][1]
    assert full > 0
    assert results["ada"][0] == full and results["cy"][0] == full, results
    for student in ("w0", "w1", "w2", "w3", "wrong", "bob"):
        assert results[student][0] == 0, (student, results[student])
    assert _digests(root) == before
    assert not (Path(site.getsitepackages()[0]) / PTH).exists()


@needs_bwrap
def test_sandbox_holds_against_every_technique(course_copy, monkeypatch):
    monkeypatch.delenv("COURSE_SANDBOX", raising=False)
    before = _digests(course_copy)
    students = _students()
    students[5:5] = [(name, _attack((name, cell, i))) for name, cell, i in IN_KERNEL]
    results = _run(course_copy, students, scan=False)
    _assert_held(results, course_copy, before)
    for name, *_ in IN_KERNEL:
        assert results[name][0] == 0, (name, results[name])
    # In the sandbox the writes fail: nothing changed, so nothing needed undoing.
    assert not any(f.get("tampered") for r in results.values() for f in r[2])


def test_fallback_undoes_and_flags_every_file_written(course_copy, monkeypatch):
    monkeypatch.setenv("COURSE_SANDBOX", "off")
    before = _digests(course_copy)
    results = _run(course_copy, _students(), scan=False)
    _assert_held(results, course_copy, before)
    for student in ("w0", "w1", "w2", "w3"):
        flags = results[student][2]
        assert [f for f in flags if f.get("tampered")], (student, flags)
    for student in ("ada", "wrong", "bob", "cy"):
        assert not results[student][2], (student, results[student])


def test_in_kernel_techniques_fail_without_a_sandbox_too(course_copy, monkeypatch):
    """The grader's own checks do not depend on the sandbox: a replaced sys.modules entry,
    mock.patch, a thread or a reload cannot reach them."""
    monkeypatch.setenv("COURSE_SANDBOX", "off")
    students = [(name, _attack((name, cell, i))) for name, cell, i in IN_KERNEL]
    results = _run(course_copy, students, scan=False)
    for name, *_ in IN_KERNEL:
        assert results[name][0] == 0, (name, results[name])


def test_control_without_protection_the_techniques_score(course_copy, monkeypatch):
    # (Not the rewrite: unprotected, it would rewrite this checkout's own package.)
    monkeypatch.setenv("COURSE_SANDBOX", "off")
    techniques = [t for t in IN_KERNEL if t[0] != "reload-after-a-rewrite"]
    students = [(name, _attack((name, cell, i))) for name, cell, i in techniques]
    results = _run(course_copy, students, safeguard=False)
    for name, *_ in techniques:
        assert results[name][0] > 0, (name, results[name])


@needs_bwrap
def test_a_python_that_lives_under_tmp_grades_in_the_sandbox(tmp_path):
    """The sandbox gives the kernel an empty /tmp: a Python installed there (CI's virtual
    environment, made by ``mktemp -d``) must stay visible, or every kernel dies at start."""
    venv = Path(tempfile.mkdtemp(prefix="course-venv-", dir="/tmp")) / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
        # The new environment sees this one's packages through a .pth file, as a venv made
        # with --system-site-packages sees its base's; that flag itself would show the base
        # interpreter's packages, not this environment's (on a fresh machine: no nbformat).
        (purelib,) = (venv / "lib").glob("python*/site-packages")
        (purelib / "course_test_outer.pth").write_text(
            "".join(f"import site; site.addsitedir({p!r})\n" for p in site.getsitepackages())
        )
        notebook = tmp_path / f"{LAB}.ipynb"
        shutil.copy(student_path(LAB), notebook)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "COURSE_PROFILE": "smoke"}
        env["COURSE_SANDBOX"] = "require"
        done = subprocess.run(
            [venv / "bin" / "python", "-m", "course_utils", "grade", notebook],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
        )  # fmt: skip
        assert "Score: 0/3" in done.stdout, done.stdout + done.stderr
        assert "sandbox (bubblewrap)" in done.stdout, done.stdout
    finally:
        shutil.rmtree(venv.parent, ignore_errors=True)
