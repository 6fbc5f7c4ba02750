"""Shared helpers for the test suite (imported as ``helpers``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from course_utils import config

ROOT = Path(__file__).resolve().parents[1]
LABS = list(config.LAB_NAMES)


def solution_path(lab: str) -> Path:
    return ROOT / "solutions" / lab / f"{lab}.ipynb"


def student_path(lab: str) -> Path:
    return ROOT / "notebooks" / lab / f"{lab}.ipynb"


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save(nb: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def with_extra_cell(nb: dict, source: str, index: int = 2) -> dict:
    """A copy of ``nb`` with one code cell a learner added at ``index``."""
    nb = copy.deepcopy(nb)
    nb["cells"].insert(
        index,
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "added-by-learner",
            "metadata": {},
            "outputs": [],
            "source": source,
        },
    )
    return nb


def replace_solution(nb: dict, grade_id: str, source: str) -> dict:
    """A copy of ``nb`` whose exercise cell ``grade_id`` holds ``source``."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            cell["source"] = source
            return nb
    raise KeyError(grade_id)


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600):
    """Run ``python -m course_utils ARGS``; return the CompletedProcess (text, never raises)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "course_utils", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# A JupyterLab server the tests started (conftest.py's jupyter_lab fixture starts them). Here,
# not in conftest.py: solutions/conftest.py shares that module name, so `from conftest import`
# finds the wrong one when the whole suite runs.
@dataclass
class LabServer:
    root: Path
    port: int
    token: str
    process: subprocess.Popen
    log_path: Path
    env: dict = field(repr=False, default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, path: str, method: str = "GET", timeout: float = 30) -> tuple[int, bytes]:
        """(status, body) of an HTTP request to the server, authenticated with the token."""
        req = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def shutdown_kernels(self) -> None:
        """Delete every session (and so its kernel): one lab's kernel must not slow the next."""
        status, body = self.request("/api/sessions")
        if status == 200:
            for session in json.loads(body):
                self.request(f"/api/sessions/{session['id']}", method="DELETE")
        status, body = self.request("/api/kernels")
        if status == 200:
            for kernel in json.loads(body):
                self.request(f"/api/kernels/{kernel['id']}", method="DELETE")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Kill the server's process group (the server and its kernels); idempotent."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:  # kernels the server started are in the same group: make sure they are gone
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=15)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
