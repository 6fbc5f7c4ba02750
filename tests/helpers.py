"""Shared helpers for the test suite (imported as ``helpers``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import copy
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from course_utils import config

ROOT = Path(__file__).resolve().parents[1]
LABS = list(config.LAB_NAMES)


def solution_path(lab: str) -> Path:
    return ROOT / "solutions" / lab / f"{lab}.ipynb"


def student_path(lab: str) -> Path:
    return ROOT / "notebooks" / lab / f"{lab}.ipynb"


def _execute_in_smoke(path: Path):
    """``path`` run top to bottom in a fresh kernel in the smoke profile, offline; errors are
    kept as outputs (an untouched notebook fails in its exercises) and so is widget state."""
    import nbformat
    from nbclient import NotebookClient

    from course_utils.tooling.steady_kernel import SteadyKernelManager

    env = {
        **os.environ,
        "COURSE_PROFILE": "smoke",
        "COURSE_OFFLINE": "1",
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    client = NotebookClient(
        nbformat.read(path, as_version=4),
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        store_widget_state=True,
        kernel_manager_class=SteadyKernelManager,
        resources={"metadata": {"path": str(path.parent)}},
    )
    return client.execute(env=env)


@cache
def executed_in_smoke() -> dict:
    """Every lab's student and solution notebook, executed once per session by
    :func:`_execute_in_smoke`, several at a time: ``{(lab, "student" | "solution"): nb}``.
    The learner-experience and widget tests read the same runs."""
    from course_utils.profiles import usable_cpus

    jobs = {}
    for lab in LABS:
        if solution_path(lab).is_file():
            jobs[(lab, "student")] = student_path(lab)
            jobs[(lab, "solution")] = solution_path(lab)
    with ThreadPoolExecutor(max_workers=max(1, min(4, usable_cpus()))) as pool:
        futures = {key: pool.submit(_execute_in_smoke, path) for key, path in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


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


def start_lab(
    root: Path,
    *,
    config_dir: Path,
    env: dict | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = 120,
    command: tuple[str, ...] | None = None,
    cwd: Path | None = None,
) -> LabServer:
    """Start ``jupyter lab`` serving ``root``; return once /api/status answers 200.

    ``command`` replaces ``python -m jupyterlab`` (e.g. ``python -m course_utils start``, which
    finds its root itself); the port, token and ``extra_args`` are appended either way.
    ``cwd`` is where it runs (default ``root``).
    """
    root, config_dir = Path(root), Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    state = config_dir.parent / f"{config_dir.name}-state"
    (state / "runtime").mkdir(parents=True, exist_ok=True)
    # A matplotlib backend chosen for this process (e.g. MPLBACKEND=Agg) must not reach the
    # kernels: there, figures would show as "<Figure size ...>" instead of pictures.
    inherited = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    full_env = {
        **inherited,
        # Isolated from ~/.jupyter: user settings, workspaces and runtime files go here.
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "IPYTHONDIR": str(state / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "0",
        **(env or {}),
    }
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port, token = _free_port(), secrets.token_hex(16)
        log_path = state / f"server-{port}.log"
        argv = [
            *(command or (sys.executable, "-m", "jupyterlab", "--allow-root",
                          f"--ServerApp.root_dir={root}")),
            "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", *extra_args,
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                argv, cwd=cwd or root, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        server = LabServer(root, port, token, process, log_path, full_env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if server.request("/api/status", timeout=5)[0] == 200:
                    return server
            except OSError:
                pass
            time.sleep(0.5)
        last_error = server.log()[-4000:]
        server.stop()
    raise RuntimeError(f"jupyter lab did not start within {timeout:.0f} s; its log:\n{last_error}")


def assert_logits_close(ours, theirs, rel: float = 1e-5) -> None:
    """Our model's output equals a reference model's up to ``rel`` times the largest value
    (the proofs against Hugging Face's BERT, GPT-2, BART and Llama, and PEFT's LoRA)."""
    scale = theirs.abs().max().item()
    diff = (ours - theirs).abs().max().item()
    assert diff <= rel * scale, f"largest difference {diff:.3g} > {rel} x largest value {scale:.3g}"
