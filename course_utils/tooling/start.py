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

What learners do not need stays out of their way (``--instructor`` keeps it): nbgrader's
instructor panels (the formgrader, "Create Assignment", the course list; the assignment list
and "Validate" stay) and JupyterLab's pop-up asking to fetch news from the internet. They are
switched off for this server only, through its options and a page configuration of its own
(a temporary folder first on ``JUPYTER_CONFIG_PATH``), so nothing in the learner's Jupyter
settings changes; ``binder/hide-instructor-tools`` does the same for Binder.

As root (containers, WSL, cloud machines) JupyterLab refuses to start unless given
``--allow-root``: ``start`` passes it and says so in one line. Options ``start`` does not know
(``--port=9000``, ``--no-browser``, ``--ServerApp.ip=0.0.0.0`` ...) go to JupyterLab as they are.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
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


# What a learner's JupyterLab leaves out (binder/hide-instructor-tools hides the same nbgrader
# parts on Binder). The news plugin asks, in a pop-up, whether to fetch Jupyter's news feed.
HIDDEN_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
)
HIDDEN_LAB_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
    "@jupyterlab/apputils-extension:announcements",
)
ROOT_WARNING = (
    "Note: running as root (usual in containers, WSL and cloud machines): JupyterLab starts "
    "with --allow-root."
)


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def learner_options(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Options for a learner's server: the instructor tools off, ``--allow-root`` as root."""
    options = [f"--ServerApp.jpserver_extensions={name}=False" for name in HIDDEN_SERVER_EXTENSIONS]
    if running_as_root() and not any(a.startswith("--allow-root") for a in extra):
        options.append("--allow-root")
    return options


def page_config_folder(parent: Path) -> Path:
    """A Jupyter configuration folder whose page configuration disables HIDDEN_LAB_PLUGINS.

    Put first on ``JUPYTER_CONFIG_PATH``, it adds to the learner's own settings for this
    server only (``jupyter labextension disable`` would write them for good)."""
    folder = Path(parent) / "jupyter-config"
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    disabled = dict.fromkeys(HIDDEN_LAB_PLUGINS, True)
    (folder / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": disabled}, indent=1), encoding="utf-8"
    )
    return folder


def command(
    root: Path, lab: str, extra: list[str] | tuple[str, ...] = (), *, instructor: bool = False
) -> list[str]:
    own = [] if instructor else learner_options(extra)
    if instructor and running_as_root() and "--allow-root" not in extra:
        own = ["--allow-root"]
    return [sys.executable, "-m", "jupyterlab", *lab_arguments(root, lab), *own, *extra]


def start(
    root: Path,
    lab: str,
    *,
    print_only: bool = False,
    extra: list[str] | tuple[str, ...] = (),
    instructor: bool = False,
) -> int:
    """Run JupyterLab for the course at ``root`` until it is stopped; its exit code.

    ``extra`` options go to JupyterLab unchanged; ``instructor`` keeps nbgrader's instructor
    tools and JupyterLab's news."""
    root = Path(root).resolve()
    notebook = root / "notebooks" / lab / f"{lab}.ipynb"
    if not notebook.is_file():
        raise CourseError(
            f"{notebook}: no such notebook; run `python -m course_utils release {lab}` first"
        )
    argv = command(root, lab, extra, instructor=instructor)
    if print_only:
        print(shlex.join(argv))
        return 0
    if "--allow-root" in argv and "--allow-root" not in extra:
        print(ROOT_WARNING)
    print(
        f"Starting JupyterLab in {root} with {notebook.relative_to(root)} open (Ctrl+C stops it)."
    )
    with tempfile.TemporaryDirectory(prefix="course-start-") as scratch:
        env = server_environment()
        if not instructor:
            folder = str(page_config_folder(Path(scratch)))
            env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
                p for p in (folder, env.get("JUPYTER_CONFIG_PATH", "")) if p
            )
        try:
            return subprocess.call(argv, cwd=root, env=env)
        except KeyboardInterrupt:  # JupyterLab has already shut down on the same signal
            return 0
