"""One writer at a time in nbgrader's SQLite gradebook, across processes.

``python -m course_utils.tooling.gradebook_lock ARGS`` runs ``nbgrader ARGS`` (the instructor's
own command, reading ``nbgrader_config.py`` in the working folder) with every
:class:`nbgrader.api.Gradebook` of the process holding an exclusive ``flock`` on
``<gradebook>.lock`` from the moment it is opened until it is closed. ``python -m course_utils
autograde --jobs N`` starts one such process per student (see
:mod:`course_utils.tooling.autograde`).
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


def main(argv: list[str]) -> int:
    install()
    from nbgrader.apps.nbgraderapp import NbGraderApp

    NbGraderApp.launch_instance(argv=argv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
