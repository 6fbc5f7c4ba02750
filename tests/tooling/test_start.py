"""``python -m course_utils start``: JupyterLab rooted at the course, with lab 00 in front.

The README's first command calls it. A server started with its options serves every lab from
the file tree (lab 00 ends by pointing at lab 01), sends a bare visit to lab 00, and nbgrader
finds the course inside the server's root. (tests/tooling/test_browser.py opens lab 01 from
the file browser and runs lab 00's grade command in a JupyterLab terminal.)
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import LABS, ROOT, run_cli

from course_utils.tooling import start


def test_start_command_roots_jupyterlab_at_the_course_with_lab_00_in_front():
    result = run_cli("start", "--print-command")
    assert result.returncode == 0, result.stderr
    argv = shlex.split(result.stdout.strip())
    assert argv[:3] == [sys.executable, "-m", "jupyterlab"], argv
    assert f"--ServerApp.root_dir={ROOT.resolve()}" in argv
    assert f"--LabApp.default_url=/lab/tree/notebooks/{LABS[0]}/{LABS[0]}.ipynb" in argv
    other = run_cli("start", LABS[1], "--print-command")
    assert f"/lab/tree/notebooks/{LABS[1]}/{LABS[1]}.ipynb" in other.stdout
    unknown = run_cli("start", "99_nope", "--print-command")
    assert unknown.returncode == 2 and "unknown lab '99_nope'" in unknown.stderr


def test_start_sets_a_passive_openmp_policy_unless_one_is_chosen():
    assert start.server_environment({})["OMP_WAIT_POLICY"] == "PASSIVE"
    assert start.server_environment({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


def test_a_terminal_finds_this_python_first_and_is_no_login_shell(tmp_path):
    """A login shell reads /etc/profile, which on Debian sets PATH afresh: the virtual
    environment's python would be lost (CI saw `python: not found` in a terminal)."""
    here = str(Path(sys.executable).parent)
    env = start.server_environment({"PATH": "/usr/bin:/bin"})
    assert env["PATH"].split(os.pathsep) == [here, "/usr/bin", "/bin"]
    assert start.server_environment(env)["PATH"] == env["PATH"]  # not added twice
    (option,) = [a for a in start.lab_arguments(tmp_path, LABS[0]) if "terminado" in a]
    shell = json.loads(option.split("=", 1)[1])["shell_command"]
    assert shell == start.terminal_command() and "-l" not in shell, shell
    assert start.terminal_command({"SHELL": "/bin/sh"}) == ["/bin/sh"]


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_a_terminal_keeps_this_python_first_whatever_the_users_rc_file_does(shell, tmp_path):
    """~/.bashrc (or ~/.zshrc) may run `pyenv init` or `conda init`, which put another Python
    first on PATH: the course's terminal reads the user's file, then puts this one first."""
    executable = shutil.which(shell)
    if executable is None:
        pytest.skip(f"{shell} is not installed")
    home = tmp_path / "home"
    other = tmp_path / "other-python" / "bin"  # what pyenv's shims are to CI's terminal
    other.mkdir(parents=True)
    (other / "python").write_text("#!/bin/sh\necho other python\n")
    (other / "python").chmod(0o755)
    home.mkdir()
    rc = f'export PATH="{other}:$PATH"\nexport COURSE_RC_READ=yes\n'
    (home / (".bashrc" if shell == "bash" else ".zshrc")).write_text(rc)
    env = start.server_environment(
        {"PATH": os.environ["PATH"], "HOME": str(home), "SHELL": executable, "TERM": "dumb"}
    )
    argv = start.terminal_command(env)
    typed = 'echo "rc=$COURSE_RC_READ python=$(command -v python)"; exit\n'
    done = subprocess.run(
        argv, input=typed, capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
    )
    here = Path(sys.executable).parent
    assert f"rc=yes python={here / 'python'}" in done.stdout, (argv, done.stdout, done.stderr)


def test_start_names_a_missing_notebook(tmp_path, capsys):
    with pytest.raises(start.CourseError, match="release 00_start_here"):
        start.start(tmp_path, LABS[0], print_only=True)


@pytest.mark.slow
def test_a_server_started_so_serves_every_lab_and_opens_lab_00(jupyter_lab, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "notebooks", course / "notebooks")
    (course / "solutions").mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course)
    root_option, *options = start.lab_arguments(course, LABS[0])
    assert root_option == f"--ServerApp.root_dir={course.resolve()}"  # the fixture sets it
    server = jupyter_lab(
        course,
        config_dir=tmp_path / "jupyter-config",
        env={"PYTHONPATH": str(ROOT), **start.server_environment({})},
        extra_args=tuple(options),
    )
    try:
        status, _ = server.request("/api/contents")
        assert status == 200
        for lab in LABS:
            status, body = server.request(f"/api/contents/notebooks/{lab}/{lab}.ipynb")
            assert status == 200, f"{lab}: {status} {body[:300]!r}"

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(NoRedirect)
        try:
            opener.open(f"{server.url}/?token={server.token}", timeout=30)
            raise AssertionError("/ did not redirect")
        except urllib.error.HTTPError as error:
            assert error.code in (301, 302), error.code
            assert error.headers["Location"].startswith(start.lab_url_path(LABS[0])), error.headers[
                "Location"
            ]
        assert "not a subdirectory of the notebook server root" not in server.log()
    finally:
        server.stop()


def test_start_passes_unknown_options_to_jupyterlab_and_allows_root(monkeypatch):
    from course_utils.tooling.cli import _split_start

    assert _split_start(["05_decoder_only", "--port", "9000", "--no-browser"]) == (
        ["05_decoder_only"],
        ["--port", "9000", "--no-browser"],
    )
    assert _split_start(["--no-browser", LABS[1], "--print-command"]) == (
        [LABS[1], "--print-command"],
        ["--no-browser"],
    )
    assert _split_start(["--", "--ServerApp.ip=0.0.0.0"]) == ([], ["--ServerApp.ip=0.0.0.0"])
    result = run_cli("start", "--print-command", "--port=9000", "--no-browser")
    argv = shlex.split(result.stdout.strip())
    assert argv[-2:] == ["--port=9000", "--no-browser"], argv
    monkeypatch.setattr(start.os, "geteuid", lambda: 0)
    assert "--allow-root" in start.command(ROOT, LABS[0])
    assert start.command(ROOT, LABS[0], ["--allow-root"]).count("--allow-root") == 1
    assert "--allow-root" in start.command(ROOT, LABS[0], instructor=True)
    monkeypatch.setattr(start.os, "geteuid", lambda: 1000)
    assert "--allow-root" not in start.command(ROOT, LABS[0])
    learner = start.command(ROOT, LABS[0])
    for name in start.HIDDEN_SERVER_EXTENSIONS:
        assert f"--ServerApp.jpserver_extensions={name}=False" in learner
        assert not any(name in a for a in start.command(ROOT, LABS[0], instructor=True))


@pytest.mark.slow
def test_start_itself_serves_lab_00_without_instructor_tools_or_news(tmp_path):
    """`python -m course_utils start`, as the README runs it (as root here, when the suite
    runs as root): it serves lab 00, the formgrader is off, the page configuration disables
    nbgrader's instructor panels and the news pop-up; then it is stopped. About 10 s."""
    import re
    import signal
    import subprocess

    from helpers import start_lab

    env = {"COURSE_ROOT": str(ROOT)}  # start_lab keeps the user's Jupyter settings aside
    server = start_lab(
        ROOT, config_dir=tmp_path / "config", env=env, cwd=tmp_path,
        command=(sys.executable, "-m", "course_utils", "start"),
    )  # fmt: skip
    process = server.process
    try:
        status, _ = server.request(f"/api/contents/notebooks/{LABS[0]}/{LABS[0]}.ipynb")
        assert status == 200, server.log()[-3000:]
        head = server.log().splitlines()[:3]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            assert head[0] == start.ROOT_WARNING, head
        assert any(line.startswith("Starting JupyterLab in") for line in head), head
        status, page = server.request(start.lab_url_path(LABS[0]))
        assert status == 200
        config = json.loads(
            re.search(rb'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1)
        )
        disabled = config.get("disabledExtensions", {})
        for plugin in start.HIDDEN_LAB_PLUGINS:
            assert plugin in disabled, (plugin, disabled)
        assert "@jupyter/nbgrader:assignment-list" not in disabled  # learners keep that
        assert server.request("/formgrader")[0] == 404
        assert server.request("/assignments")[0] != 404  # the learner's assignment list
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # as Ctrl+C does
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        server.stop()
    assert process.poll() is not None
    assert not (tmp_path / "config" / "labconfig").exists(), "start wrote the user's settings"
