"""``python -m course_utils start [LAB]``: JupyterLab at the course folder, with a lab in front.

``jupyter lab notebooks/00_start_here/00_start_here.ipynb`` would root the server at that
notebook's folder: the file browser would show lab 00 only, links to the next lab would be
404s, a terminal would open where ``grade notebooks/...`` finds no such file, and nbgrader
would warn that the course lies outside the server's root. ``start`` roots JupyterLab at the
course folder instead and makes the lab's notebook the page it opens (``default_url``), so
the browser shows lab 00 whether JupyterLab opens it or you paste the printed address.

Kernels the server starts inherit a passive OpenMP wait policy (unless you chose one), the
same policy every notebook's first cell sets: with it, PyTorch's idle threads stop spinning
and a busy machine stays responsive.

A JupyterLab terminal's ``python`` is the course's Python. The folder of the Python that runs
``start`` goes first on the server's ``PATH`` (so it holds without an activated environment),
and terminals open as plain interactive shells: JupyterLab's default, a login shell, reads
``/etc/profile``, which on Debian and Ubuntu sets ``PATH`` afresh and so drops a virtual
environment's ``bin`` folder (``python -m course_utils grade`` then finds another Python, or
none). An interactive shell still reads ``~/.bashrc`` (or ``~/.zshrc``), where ``pyenv init``
or ``conda init`` put their own Python first again; so bash and zsh start with the course's
start-up file (``terminal/``), which reads yours and then puts the course's Python
(``COURSE_PYTHON_BIN``) first once more.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .course_dir import CourseError


def lab_url_path(lab: str) -> str:
    """The URL path (below the server's base URL) of ``lab``'s student notebook."""
    return f"/lab/tree/notebooks/{lab}/{lab}.ipynb"


def lab_arguments(root: Path, lab: str, environ: dict | None = None) -> list[str]:
    """JupyterLab's options for the course at ``root`` with ``lab`` in front (terminals run
    the shell ``environ``, default this process's environment, names)."""
    terminals = {"shell_command": terminal_command(environ)}
    return [
        f"--ServerApp.root_dir={Path(root).resolve()}",
        f"--LabApp.default_url={lab_url_path(lab)}",
        f"--ServerApp.terminado_settings={json.dumps(terminals)}",
    ]


TERMINAL_FILES = Path(__file__).with_name("terminal")


def terminal_shell(environ: dict | None = None) -> str:
    """The shell a JupyterLab terminal runs: yours (``$SHELL``), else ``sh``; never as a
    login shell, so that it keeps the server's ``PATH``."""
    env = os.environ if environ is None else environ
    return env.get("SHELL") or shutil.which("sh") or "/bin/sh"


def terminal_command(environ: dict | None = None) -> list[str]:
    """The command a JupyterLab terminal runs: :func:`terminal_shell`, interactive, and for bash
    and zsh with the course's start-up file, which reads yours and then puts the course's
    Python first on ``PATH`` (``sh`` reads no start-up file that could move it)."""
    env = os.environ if environ is None else environ
    shell = terminal_shell(env)
    name = Path(shell).name
    if name == "bash":
        return [shell, "--rcfile", str(TERMINAL_FILES / "bashrc"), "-i"]
    if name == "zsh":
        # zsh reads its start-up files from $ZDOTDIR: the course's, which read yours (from
        # your $ZDOTDIR, else $HOME as the shell sees it).
        return [
            "env", f"ZDOTDIR={TERMINAL_FILES / 'zsh'}",
            f"COURSE_USER_ZDOTDIR={env.get('ZDOTDIR', '')}", shell, "-i",
        ]  # fmt: skip
    return [shell]


def server_environment(environ: dict | None = None) -> dict:
    """The environment for the server, its kernels and terminals: ``environ`` (default: this
    process's) with ``OMP_WAIT_POLICY=PASSIVE`` unless a policy is already set, and this
    Python's folder first on ``PATH`` and in ``COURSE_PYTHON_BIN``."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    here = str(Path(sys.executable).parent)
    env["COURSE_PYTHON_BIN"] = here  # the terminals' start-up files put it first again
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p]
    if path[:1] != [here]:
        env["PATH"] = os.pathsep.join([here, *path])
    return env


def command(root: Path, lab: str) -> list[str]:
    return [sys.executable, "-m", "jupyterlab", *lab_arguments(root, lab)]


def start(root: Path, lab: str, *, print_only: bool = False) -> int:
    """Run JupyterLab for the course at ``root`` until it is stopped; its exit code."""
    root = Path(root).resolve()
    notebook = root / "notebooks" / lab / f"{lab}.ipynb"
    if not notebook.is_file():
        raise CourseError(
            f"{notebook}: no such notebook; run `python -m course_utils release {lab}` first"
        )
    argv = command(root, lab)
    if print_only:
        print(shlex.join(argv))
        return 0
    print(
        f"Starting JupyterLab in {root} with {notebook.relative_to(root)} open (Ctrl+C stops it)."
    )
    try:
        return subprocess.call(argv, cwd=root, env=server_environment())
    except KeyboardInterrupt:  # JupyterLab has already shut down on the same signal
        return 0
