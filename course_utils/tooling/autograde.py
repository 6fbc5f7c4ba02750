"""``python -m course_utils autograde LAB [--jobs N]``: grade a class's submissions in parallel.

Each student in ``submitted/<student>/LAB/`` is graded by its own ``nbgrader autograde LAB
--student STUDENT --force`` process, run in the course folder with the course's
``nbgrader_config.py``: exactly the instructor's path, one student at a time per process, so
the scores are those of plain ``nbgrader autograde`` (and one job gives the same as N). Each
process starts its own sandboxed grading kernel (see :mod:`course_utils.tooling.sandbox`).

Why one process per student writing into the one gradebook, under a lock, rather than
per-student gradebooks merged afterwards: nbgrader itself writes every row (submission,
grades, comments, timestamps), so nothing has to copy its schema by hand, and a crash in one
student's process loses that student only. nbgrader keeps its gradebook in SQLite, which
allows one writer at a time and makes a second writer fail with "database is locked" after a
5-second wait. So each process takes an exclusive file lock (``gradebook.db.lock``, by
``fcntl.flock``) for as long as it holds a gradebook open (:mod:`course_utils.tooling.
gradebook_lock`): nbgrader opens it for a moment at the start (student, submission), in the
sanitising steps and when it saves the scores, never while the kernel runs, so the lock is
held for well under a second per student and the kernels run in parallel. The lock dies with
its process, so a killed worker never blocks the others.

Without a sandbox (see :mod:`course_utils.tooling.sandbox`) submissions run with the
grader's rights and are checked for changed files after each one, so they are graded one at
a time whatever ``--jobs`` says.

The default number of jobs is the CPUs this process may use (affinity and cgroup quota,
:func:`course_utils.profiles.usable_cpus`, the same count that sets PyTorch's threads):
a smoke-profile kernel uses one thread.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..profiles import usable_cpus
from .course_dir import CourseError
from .sandbox import sandbox_problem

WORKER = "course_utils.tooling.gradebook_lock"


@dataclass
class StudentRun:
    student: str
    returncode: int
    seconds: float
    output: str
    score: float | None = None
    max_score: float | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.score is not None


def default_jobs() -> int:
    return usable_cpus()


def submitted_students(root: Path, lab: str) -> list[str]:
    folder = Path(root) / "submitted"
    if not folder.is_dir():
        return []
    return sorted(
        p.name for p in folder.iterdir() if (p / lab).is_dir() and not p.name.startswith(".")
    )


def _db_path(root: Path) -> Path:
    return Path(root) / "gradebook.db"


def _check_assignment(root: Path, lab: str) -> None:
    """The lab must be in the gradebook (``nbgrader generate_assignment LAB`` puts it there)."""
    db = _db_path(root)
    if db.is_file():
        import sqlite3

        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            try:
                row = con.execute("SELECT 1 FROM assignment WHERE name = ?", (lab,)).fetchone()
            except sqlite3.Error:
                row = None
        if row:
            return
    raise CourseError(
        f"lab {lab} is not in the gradebook {db}: run `nbgrader generate_assignment {lab}` "
        "in the course folder first"
    )


def worker_command(lab: str, student: str) -> list[str]:
    return [
        sys.executable, "-m", WORKER, "autograde", lab, "--student", student, "--force",
    ]  # fmt: skip


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # nbgrader runs the `alembic` beside this Python when it creates a gradebook.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _grade_one(root: Path, lab: str, student: str, timeout: float | None) -> StudentRun:
    start = time.monotonic()
    try:
        done = subprocess.run(
            worker_command(lab, student),
            cwd=root,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as error:
        code = 124
        output = f"stopped after {timeout:g} s\n{(error.stderr or b'')[-2000:]!r}"
    return StudentRun(student, code, time.monotonic() - start, output)


def read_scores(root: Path, lab: str, students: list[str]) -> dict[str, tuple[float, float]]:
    """{student: (code score, max code score)} from the course's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    from .gradebook_lock import gradebook_lock

    scores = {}
    with gradebook_lock(_db_path(root)), Gradebook(f"sqlite:///{_db_path(root)}") as gb:
        for student in students:
            try:
                sub = gb.find_submission_notebook(lab, lab, student)
            except MissingEntry:
                continue
            scores[student] = (float(sub.code_score), float(sub.max_code_score))
    return scores


def autograde(
    root: Path,
    lab: str,
    *,
    jobs: int | None = None,
    students: list[str] | None = None,
    timeout: float | None = None,
    say=print,
) -> list[StudentRun]:
    """Grade ``students`` (default: every folder in ``submitted/`` with this lab), ``jobs``
    at a time; return one :class:`StudentRun` each, in the order of ``students``."""
    root = Path(root).resolve()
    students = list(students) if students else submitted_students(root, lab)
    if not students:
        raise CourseError(f"no submissions of {lab} in {root / 'submitted'}/<student>/{lab}/")
    _check_assignment(root, lab)
    jobs = max(1, min(jobs or default_jobs(), len(students)))
    problem = sandbox_problem()
    if problem and jobs > 1:
        # Without a sandbox each submission runs with the grader's rights and the watch undoes
        # its changes afterwards: two at once could change each other's files mid-grading.
        say(f"No sandbox here ({problem}): grading one submission at a time.")
        jobs = 1
    say(f"Grading {len(students)} submissions of {lab}, {jobs} at a time ...")
    done: dict[str, StudentRun] = {}
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {s: pool.submit(_grade_one, root, lab, s, timeout) for s in students}
        for student in students:
            run = futures[student].result()
            done[student] = run
    scores = read_scores(root, lab, students)
    runs = []
    for student in students:
        run = done[student]
        if student in scores:
            run.score, run.max_score = scores[student]
        runs.append(run)
        if run.ok:
            say(f"  {student}: {run.score:g}/{run.max_score:g} ({run.seconds:.0f} s)")
        else:
            tail = [line for line in run.output.splitlines() if line.strip()][-3:]
            say(f"  {student}: NOT GRADED (exit {run.returncode}): " + " | ".join(tail)[:400])
    elapsed = time.monotonic() - start
    say(
        f"Done in {elapsed:.0f} s: {sum(r.ok for r in runs)} of {len(runs)} graded "
        f"({elapsed / len(runs):.1f} s per submission with {jobs} jobs)."
    )
    return runs
