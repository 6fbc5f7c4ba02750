"""``python -m course_utils autograde LAB [--jobs N]``: grade a class's submissions in parallel.

``--jobs N`` worker processes run in the course folder, each with the course's
``nbgrader_config.py`` loaded once; each takes the next student from a shared queue and
runs nbgrader's own autograde for that student (what ``nbgrader autograde LAB --student S
--force`` runs), which starts a fresh sandboxed kernel for the submission (see
:mod:`course_utils.tooling.sandbox`). So the scores are those of plain ``nbgrader autograde``,
and one job gives the same as N. A worker is reused for the next student (starting one costs
about a CPU second of imports, see :mod:`course_utils.tooling.quick_imports`); one that dies
costs its current student only (reported as not graded) and is replaced.

Why workers writing into the one gradebook, under a lock, rather than per-student gradebooks
merged afterwards: nbgrader itself writes every row (submission, grades, comments,
timestamps), so nothing has to copy its schema by hand. nbgrader keeps its gradebook in
SQLite, which allows one writer at a time and makes a second writer fail with "database is
locked" after a 5-second wait. So each process takes an exclusive file lock
(``gradebook.db.lock``, by ``fcntl.flock``) for as long as it holds a gradebook open
(:mod:`course_utils.tooling.gradebook_lock`): nbgrader opens it for a moment at the start
(student, submission), in the sanitising steps and when it saves the scores, never while the
kernel runs, so the lock is held for well under a second per student and the kernels run in
parallel. The lock dies with
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
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue

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
    repairs: list[str] = field(default_factory=list)  # what grading repaired first

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


def worker_command(lab: str) -> list[str]:
    return [sys.executable, "-m", WORKER, "--serve", lab]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # nbgrader runs the `alembic` beside this Python when it creates a gradebook.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


class Worker:
    """One ``gradebook_lock --serve`` process; :meth:`grade` sends a student, waits for the
    answer; a dead worker is restarted for the next student."""

    def __init__(self, root: Path, lab: str):
        self.root, self.lab, self.process = root, lab, None

    def _start(self) -> None:
        self.process = subprocess.Popen(
            worker_command(self.lab),
            cwd=self.root,
            env=_environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )

    def grade(self, student: str) -> StudentRun:
        import json

        from .gradebook_lock import MARK

        if self.process is None or self.process.poll() is not None:
            self._start()
        start = time.monotonic()
        try:
            self.process.stdin.write(student + "\n")
            self.process.stdin.flush()
            for line in self.process.stdout:
                if line.startswith(MARK):
                    answer = json.loads(line[len(MARK) :])
                    seconds = time.monotonic() - start
                    if answer.get("problem"):  # one line; nbgrader would print a traceback
                        return StudentRun(student, 2, seconds, answer["problem"])
                    output = (answer["log"] + "\n" + answer["error"]).strip()
                    run = StudentRun(
                        student, 0 if answer["success"] else 1, seconds, output,
                        repairs=answer.get("repairs", []),
                    )  # fmt: skip
                    if answer.get("score"):
                        run.score, run.max_score = answer["score"]
                    return run
        except (OSError, ValueError) as error:
            return StudentRun(student, 1, time.monotonic() - start, f"worker failed: {error}")
        code = self.process.wait()
        self.process = None
        return StudentRun(student, code or 1, time.monotonic() - start, "the worker died")

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def autograde(
    root: Path,
    lab: str,
    *,
    jobs: int | None = None,
    students: list[str] | None = None,
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
    queue: Queue[str] = Queue()
    for student in students:
        queue.put(student)

    def work() -> None:
        worker = Worker(root, lab)
        try:
            while True:
                try:
                    student = queue.get_nowait()
                except Empty:
                    return
                done[student] = worker.grade(student)
        finally:
            worker.close()

    jobs = max(1, min(jobs, queue.qsize()))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for future in [pool.submit(work) for _ in range(jobs if queue.qsize() else 0)]:
            future.result()
    runs = []
    for student in students:
        run = done[student]
        runs.append(run)
        if run.ok:
            say(f"  {student}: {run.score:g}/{run.max_score:g} ({run.seconds:.0f} s)")
            for note in run.repairs:  # e.g. an edited test cell, graded as released
                say(f"  {student}: note: {note}")
        elif run.returncode == 2:
            say(f"  {student}: NOT GRADED: {run.output}")
        else:
            tail = [line for line in run.output.splitlines() if line.strip()][-3:]
            say(f"  {student}: NOT GRADED (exit {run.returncode}): " + " | ".join(tail)[:400])
    elapsed = time.monotonic() - start
    say(
        f"Done in {elapsed:.0f} s: {sum(r.ok for r in runs)} of {len(runs)} graded "
        f"({elapsed / len(runs):.1f} s per submission with {jobs} jobs)."
    )
    return runs
