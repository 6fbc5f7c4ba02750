"""Where a grading kernel runs: in a sandbox (Linux, bubblewrap), or watched (everywhere else).

A learner's code runs in the grading kernel with the grader's rights. So on Linux every
grading kernel starts inside `bubblewrap <https://github.com/containers/bubblewrap>`_
(``bwrap``):

- the whole file system is read-only, and the course folder (gradebook, ``solutions/``,
  ``submitted/``, ``autograded/``, other students' folders), the grader's working folder and
  the folder of the notebook being graded are hidden behind empty folders;
- the only writable places are a fresh scratch folder for this submission (the kernel's
  working folder) and a private ``/tmp``;
- the package the tests import is a read-only copy made for this kernel;
- no network (the kernel talks to the grader over Unix sockets in a folder of its own), its
  own process tree (``--die-with-parent``, ``--new-session``: nothing it forks outlives it),
  no capabilities.

Where bubblewrap is missing or cannot start (macOS, Windows, a container without user
namespaces), grading still works: it says once that it runs without isolation, and
:class:`Watch` hashes the files later gradings rely on (the package, the solutions, the
gradebook, what Python runs at start-up: ``.pth``, ``sitecustomize.py`` and
``usercustomize.py`` on its path, Jupyter's kernel specs, and the packages the tests import:
torch, numpy) before and after each submission. A submission that
changed any of them is flagged, its changes are undone, and the next submission is graded
against the originals.

``COURSE_SANDBOX=off`` forces the fallback (the test suite uses it); ``COURSE_SANDBOX=require``
makes a missing sandbox an error instead of a warning.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import course_utils

PACKAGE_DIR = Path(course_utils.__file__).resolve().parent
log = logging.getLogger(__name__)
_warned = False


class SandboxError(RuntimeError):
    """COURSE_SANDBOX=require, and no sandbox can start here."""


def _mode() -> str:
    return os.environ.get("COURSE_SANDBOX", "").strip().lower() or "auto"


@functools.cache
def _probe(bwrap: str) -> str:
    """'' when bubblewrap starts this Python in a sandbox like the one grading uses, else
    the reason."""
    cmd = [bwrap, *_BASE_ARGS, *_keep_python_visible([]), "--", sys.executable, "-c", "pass"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        return f"bwrap could not start ({error})"
    if done.returncode != 0:
        return f"bwrap cannot create a sandbox here ({done.stderr.strip()[:120] or 'no reason'})"
    return ""


_BASE_ARGS = [
    "--ro-bind", "/", "/",
    "--dev", "/dev",
    "--proc", "/proc",
    "--tmpfs", "/tmp",
    "--unshare-all",
    "--die-with-parent",
    "--new-session",
    "--cap-drop", "ALL",
]  # fmt: skip


def sandbox_problem() -> str:
    """Why grading kernels would run without a sandbox here ('' when they run in one)."""
    if _mode() in ("off", "0", "no", "false"):
        return "COURSE_SANDBOX=off"
    if not sys.platform.startswith("linux"):
        return f"no sandbox on {sys.platform} (bubblewrap is Linux only)"
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    return _probe(bwrap)


def describe() -> str:
    """One line: the isolation grading kernels get on this machine."""
    problem = sandbox_problem()
    if not problem:
        return (
            "sandbox (bubblewrap): each submission's kernel can write only its scratch folder; "
            "the course folder is hidden, the package read-only, no network"
        )
    return (
        f"no sandbox ({problem}): submissions run with your rights; the grader checks "
        "the package, solutions, gradebook, start-up files (.pth, sitecustomize) and the "
        "packages the tests import after each one and undoes changes"
    )


def sandboxed(logger: logging.Logger | None = None) -> bool:
    """True when grading kernels run in bubblewrap. Says which, once per process, through
    ``logger``; raises SandboxError instead when COURSE_SANDBOX=require and there is none."""
    global _warned
    problem = sandbox_problem()
    if problem and _mode() == "require":
        raise SandboxError(f"COURSE_SANDBOX=require, but {problem}")
    if not _warned:
        _warned = True
        logger = logger or log
        if problem:
            logger.warning("grading runs without isolation: %s", describe())
        else:
            logger.info("grading isolation: %s", describe())
    return not problem


def _read_only(path: Path) -> None:
    for folder, _dirs, files in os.walk(path):
        for name in files:
            target = Path(folder, name)
            target.chmod(target.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    for folder, _dirs, _files in os.walk(path, topdown=False):
        target = Path(folder)
        target.chmod(target.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(path: Path) -> None:
    for folder, _dirs, files in os.walk(path):
        Path(folder).chmod(Path(folder).stat().st_mode | stat.S_IWUSR)
        for name in files:
            target = Path(folder, name)
            target.chmod(target.stat().st_mode | stat.S_IWUSR)


@dataclass
class Workspace:
    """The folders one grading kernel gets: ``scratch`` (its working folder), ``lib`` (a
    read-only copy of the package, first on its ``sys.path``) and ``ipc`` (its sockets and
    connection file)."""

    base: Path
    sandboxed: bool
    hidden: list[Path] = field(default_factory=list)

    @property
    def scratch(self) -> Path:
        return self.base / "scratch"

    @property
    def lib(self) -> Path:
        return self.base / "lib"

    @property
    def ipc(self) -> Path:
        return self.base / "ipc"

    @classmethod
    def create(cls, hidden: list[Path], *, sandboxed: bool) -> Workspace:
        base = Path(tempfile.mkdtemp(prefix="course-kernel-")).resolve()
        for name in ("scratch", "ipc"):
            (base / name).mkdir()
        shutil.copytree(
            PACKAGE_DIR,
            base / "lib" / "course_utils",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        _read_only(base / "lib")
        real = [Path(p).resolve() for p in hidden if p]
        return cls(base, sandboxed, sorted(set(real)))

    def environment(self) -> dict[str, str]:
        """Variables the kernel starts with (on top of the grader's own)."""
        cache = os.environ.get("COURSE_CACHE_DIR") or "~/.cache/llm-architectures-course"
        return {
            "PYTHONPATH": str(self.lib),
            "PYTHONDONTWRITEBYTECODE": "1",
            "IPYTHONDIR": str(self.scratch / ".ipython"),
            "MPLCONFIGDIR": str(self.scratch / ".matplotlib"),
            "COURSE_CACHE_DIR": str(Path(cache).expanduser()),
            "COURSE_SCRATCH": str(self.scratch),
            "COURSE_KERNEL_CWD": str(self.scratch),
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        }

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` inside bubblewrap (unchanged when not sandboxed)."""
        if not self.sandboxed:
            return cmd
        args = ["bwrap", *_BASE_ARGS]
        for path in self.hidden:
            if path == Path("/") or Path("/tmp") in (path, *path.parents):
                continue  # /tmp is private already; hiding / would hide Python itself
            if path.is_dir():
                args += ["--tmpfs", str(path)]
        args += _keep_python_visible(self.hidden)
        args += [
            "--ro-bind", str(self.lib), str(self.lib),
            "--bind", str(self.scratch), str(self.scratch),
            "--bind", str(self.ipc), str(self.ipc),
            "--chdir", str(self.scratch),
            # ipykernel would watch its parent's pid, which does not exist in the sandbox's pid
            # namespace; --die-with-parent does that job. (1 means "no parent to watch";
            # unset, ipykernel would print its connection details into the grader's output.)
            "--setenv", "JPY_PARENT_PID", "1",
        ]  # fmt: skip
        return [*args, "--", *cmd]

    def remove(self) -> None:
        if self.base.exists():
            _writable(self.base)
            shutil.rmtree(self.base, ignore_errors=True)


def _keep_python_visible(hidden: list[Path]) -> list[str]:
    """bwrap arguments that keep Python and its libraries visible (read-only) where they live
    inside a ``hidden`` folder (a virtual environment in the course folder) or under /tmp,
    which the sandbox replaces by an empty one (a virtual environment made by ``mktemp -d``,
    as CI makes it): without them the kernel dies before it starts."""
    covered = [*hidden, Path("/tmp").resolve()]
    args: list[str] = []
    for keep in _python_paths():
        if any(h == keep or h in keep.parents for h in covered) and keep.exists():
            args += ["--ro-bind", str(keep), str(keep)]
    return args


def _python_paths() -> list[Path]:
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
    paths.add(Path(sys.executable).resolve().parent.parent)
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if sysconfig.get_paths().get(key):
            paths.add(Path(sysconfig.get_paths()[key]))
    paths.update(Path(p) for p in site.getsitepackages())
    # Site folders added at start-up by a .pth file or PYTHONPATH (another environment's
    # packages, as a venv made with --system-site-packages sees its base's).
    paths.update(Path(p) for p in sys.path if Path(p).name in ("site-packages", "dist-packages"))
    cache = os.environ.get("COURSE_CACHE_DIR") or "~/.cache/llm-architectures-course"
    paths.add(Path(cache).expanduser())
    return sorted(p.resolve() for p in paths)


def site_dirs() -> list[Path]:
    """Folders whose ``.pth`` files every later Python process runs."""
    dirs = [Path(p) for p in site.getsitepackages()]
    user = site.getusersitepackages()
    if user:
        dirs.append(Path(user))
    return dirs


# Files Python runs at start-up from any folder on its path, besides ``*.pth``.
STARTUP_NAMES = ("sitecustomize.py", "usercustomize.py")


def startup_dirs() -> list[Path]:
    """Folders where a ``sitecustomize.py``/``usercustomize.py`` or ``.pth`` file would run in
    every later Python: site-packages (also the user's, which may not exist yet) and every
    folder on this Python's ``sys.path``."""
    dirs = {Path(d).resolve() for d in site_dirs()}
    for entry in sys.path:
        if entry and Path(entry).is_dir() and not entry.endswith(".zip"):
            dirs.add(Path(entry).resolve())
    return sorted(dirs)


def kernelspec_dirs() -> list[Path]:
    """Folders of Jupyter kernel specs: a rewritten ``kernel.json`` would change the kernel
    that later submissions run in."""
    try:
        from jupyter_core.paths import jupyter_path

        return [Path(p) for p in jupyter_path("kernels")]
    except ImportError:  # pragma: no cover - nbgrader needs jupyter_core
        return []


# Packages a test cell may import besides the course's own (watched whole, always).
TEST_PACKAGES = ("torch", "numpy")


def package_dirs(names=TEST_PACKAGES) -> list[Path]:
    """Installed folders of the packages ``names`` (found without importing them)."""
    import importlib.util

    found = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            found.append(Path(location).resolve())
    return found


# A watched package file larger than this is compared by size and time stamp only (a
# package's compiled libraries): a change is flagged, but cannot be undone from memory.
_KEEP_BYTES = 2 * 2**20


class Watch:
    """Integrity check for the fallback: snapshot files, then find and undo changes.

    ``trees`` are folders watched whole (package, solutions); ``files`` single files (the
    gradebook); ``pth_dirs`` folders whose ``*.pth``, ``sitecustomize.py`` and
    ``usercustomize.py`` are watched (created ones too); ``packages`` installed packages the
    tests import (torch's folder ...): their Python files are kept and restored, their
    other files compared by size and modification time.
    """

    def __init__(
        self,
        trees: list[Path],
        files: list[Path],
        pth_dirs: list[Path],
        packages: list[Path] = (),
    ):
        self.trees = [Path(t) for t in trees if t]  # a missing one: its creation is seen
        self.files = [Path(f) for f in files if f]
        self.pth_dirs = [Path(d) for d in pth_dirs if d]
        self.packages = [Path(p) for p in packages if p and Path(p).is_dir()]
        self.before = self._snapshot()
        self.stats_before = self._package_stats()
        self.kept = {
            path: path.read_bytes()
            for path, (size, _mtime) in self.stats_before.items()
            if path.suffix == ".py" and size <= _KEEP_BYTES and os.access(path, os.R_OK)
        }

    def _paths(self) -> set[Path]:
        found: set[Path] = set()
        for tree in self.trees:
            for folder, dirs, names in os.walk(tree):
                dirs[:] = [d for d in dirs if d not in ("__pycache__", ".ipynb_checkpoints")]
                found.update(Path(folder, n) for n in names if not n.endswith(".pyc"))
        found.update(f for f in self.files if f.is_file())
        for folder in self.pth_dirs:
            if folder.is_dir():
                found.update(folder.glob("*.pth"))
                found.update(p for p in map(folder.joinpath, STARTUP_NAMES) if p.is_file())
        return found

    def _package_stats(self) -> dict[Path, tuple[int, int]]:
        stats = {}
        for tree in self.packages:
            for folder, dirs, names in os.walk(tree):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                for name in names:
                    if name.endswith(".pyc"):
                        continue
                    path = Path(folder, name)
                    try:
                        info = path.lstat()
                    except OSError:
                        continue
                    stats[path] = (info.st_size, info.st_mtime_ns)
        return stats

    def _snapshot(self) -> dict[Path, bytes]:
        snapshot = {}
        for path in self._paths():
            try:
                snapshot[path] = path.read_bytes()
            except OSError:
                continue
        return snapshot

    @staticmethod
    def _put_back(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and not os.access(path, os.W_OK):
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        path.write_bytes(data)

    def restore(self) -> list[str]:
        """Undo every change since the snapshot; return what had changed (one line each)."""
        after = self._snapshot()
        changes = []
        for path, data in self.before.items():
            if after.get(path) != data:
                changes.append(f"{'changed' if path in after else 'deleted'} {path}")
                self._put_back(path, data)
        for path in sorted(set(after) - set(self.before)):
            changes.append(f"added {path}")
            path.unlink(missing_ok=True)
        stats = self._package_stats()
        for path, signature in self.stats_before.items():
            if stats.get(path) == signature:
                continue
            if path in self.kept:
                if path.exists() and path.read_bytes() == self.kept[path]:
                    continue  # touched, not changed
                changes.append(f"{'changed' if path in stats else 'deleted'} {path}")
                self._put_back(path, self.kept[path])
            else:
                changes.append(
                    f"{'changed' if path in stats else 'deleted'} {path} (NOT undone: "
                    "reinstall that package)"
                )
        for path in sorted(set(stats) - set(self.stats_before)):
            changes.append(f"added {path}")
            path.unlink(missing_ok=True)
        return sorted(changes)
