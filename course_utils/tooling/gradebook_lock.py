"""One writer at a time in nbgrader's SQLite gradebook, across processes.

Every :class:`nbgrader.api.Gradebook` of a process that called :func:`install` holds an
exclusive ``flock`` on ``<gradebook>.lock`` from the moment it is opened until it is closed.

``python -m course_utils.tooling.gradebook_lock ARGS`` runs ``nbgrader ARGS`` so (the
instructor's own command, reading ``nbgrader_config.py`` in the working folder).

``python -m course_utils.tooling.gradebook_lock --serve LAB`` is one worker of ``python -m
course_utils autograde --jobs N`` (see :mod:`course_utils.tooling.autograde`): it loads the
course's nbgrader configuration once, then reads student ids from standard input, one a line,
checks that nbgrader can read the student's notebooks, runs nbgrader's own autograde for each
(``NbGraderAPI.autograde``, what ``nbgrader autograde LAB --student S --force`` runs) and
answers each with one line on standard output: ``@@course-autograde@@ {"student": ...,
"success": ..., "log": ..., "error": ..., "repairs": [...], "score": [code score, max],
"problem": ...}``
(``problem``: the one line that says why the submission was not graded; ``score`` when
graded). So the parent never loads nbgrader: a class starts grading as soon as the workers
are up.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

_held: dict[str, list] = {}  # lock path -> [file descriptor, depth] (re-entrant per process)
_mutex = threading.RLock()


def _lock_path(db_url_or_path: str | Path) -> Path | None:
    text = str(db_url_or_path)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    elif "://" in text:
        return None  # not a file (another database server does its own locking)
    return Path(text).resolve().with_name(Path(text).name + ".lock")


def acquire(db: str | Path) -> None:
    path = _lock_path(db)
    if path is None:
        return
    _mutex.acquire()
    key = str(path)
    if key in _held:
        _held[key][1] += 1
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)
    except ImportError:  # pragma: no cover - Windows: autograde runs one job there
        pass
    _held[key] = [fd, 1]


def release(db: str | Path) -> None:
    path = _lock_path(db)
    if path is None:
        return
    key = str(path)
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        del _held[key]
        os.close(entry[0])  # closing the descriptor releases the flock
    _mutex.release()


@contextlib.contextmanager
def gradebook_lock(db: str | Path):
    acquire(db)
    try:
        yield
    finally:
        release(db)


def install() -> None:
    """Make every nbgrader Gradebook of this process hold the lock while it is open."""
    from nbgrader.api import Gradebook

    if getattr(Gradebook, "_course_locked", False):
        return
    original_init, original_close = Gradebook.__init__, Gradebook.close

    def __init__(self, db_url, *args, **kwargs):
        acquire(db_url)
        self._course_lock = db_url
        try:
            original_init(self, db_url, *args, **kwargs)
        except BaseException:
            del self._course_lock
            release(db_url)
            raise

    def close(self):
        try:
            original_close(self)
        finally:
            db = self.__dict__.pop("_course_lock", None)
            if db is not None:
                release(db)

    Gradebook.__init__, Gradebook.close = __init__, close
    Gradebook._course_locked = True


MARK = "@@course-autograde@@ "


def submission_problem(root: Path, lab: str, student: str) -> str:
    """'' when nbgrader can read every notebook of this submission, else one line saying
    which file and cell cannot be (nbgrader itself would stop on it with its traceback)."""
    from .nbgrader_steps import notebook_problem

    folder = Path(root) / "submitted" / student / lab
    for path in sorted(folder.glob("*.ipynb")):
        problem = notebook_problem(path, f"{lab}/{path.name}")
        if problem:
            return problem
    return ""


def read_scores(root: Path, lab: str, students: list[str]) -> dict[str, tuple[float, float]]:
    """{student: (code score, max code score)} from the course's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    db = Path(root) / "gradebook.db"
    scores = {}
    with gradebook_lock(db), Gradebook(f"sqlite:///{db}") as gb:
        for student in students:
            try:
                sub = gb.find_submission_notebook(lab, lab, student)
            except MissingEntry:
                continue
            scores[student] = (float(sub.code_score), float(sub.max_code_score))
    return scores


def repair_notes(log: str) -> list[str]:
    """What the course's RepairMetadata repaired in this submission, from nbgrader's log
    (one note a line: an instructor reads them beside the score, not in a log)."""
    from .nbgrader_steps import REPAIRED

    return [line.split(REPAIRED, 1)[1].strip() for line in log.splitlines() if REPAIRED in line]


def serve(lab: str) -> int:
    """Grade the students named on standard input, one at a time (see the module's doc)."""
    import json
    import warnings

    warnings.simplefilter("ignore")  # nbgrader's database layer; never the learner's
    install()
    from nbgrader.apps import NbGraderAPI
    from nbgrader.apps.nbgraderapp import NbGraderApp

    app = NbGraderApp()
    app.initialize([])  # reads nbgrader_config.py in the working folder, as `nbgrader` does
    api = NbGraderAPI(config=app.config)
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but answers on the real standard output
    root = Path.cwd()
    for line in sys.stdin:
        student = line.strip()
        if not student:
            continue
        answer = {"student": student, "success": False, "log": "", "error": ""}
        # Checked here, in the worker (nbgrader is loaded already, and the workers check
        # their students in parallel), not by the parent before it starts the workers.
        problem = submission_problem(root, lab, student)
        if problem:
            answer["problem"] = problem
        else:
            try:
                result = api.autograde(lab, student, force=True, create=True)
            except Exception as error:  # noqa: BLE001 - one student's failure, reported
                result = {"success": False, "error": repr(error), "log": ""}
            log = result.get("log") or ""
            answer.update(
                success=bool(result.get("success")),
                log=log[-4000:],
                error=(result.get("error") or "")[-4000:],
                repairs=repair_notes(log),
            )
            if answer["success"]:
                answer["score"] = read_scores(root, lab, [student]).get(student)
        out.write(MARK + json.dumps(answer) + "\n")
        out.flush()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve"] and len(argv) == 2:
        return serve(argv[1])
    install()
    from nbgrader.apps.nbgraderapp import NbGraderApp

    NbGraderApp.launch_instance(argv=argv)
    return 0


if __name__ == "__main__":
    # Run the module by its name, not as ``__main__``: a second copy of this module, imported
    # by name by anything the worker loads, would hold its own lock on the gradebook and
    # wait for this copy's forever.
    from course_utils.tooling import gradebook_lock
    from course_utils.tooling.quick_imports import skip_slow_format_checkers

    skip_slow_format_checkers()  # before nbgrader loads jsonschema: 1.3 CPU s per worker

    sys.exit(gradebook_lock.main(sys.argv[1:]))
