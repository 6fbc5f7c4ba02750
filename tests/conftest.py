"""Shared fixtures. Only one: ``jupyter_lab``, which starts JupyterLab servers for the browser
and environment tests (tests/tooling/test_browser.py, tests/tooling/test_environments.py) and
stops them.

A server listens on 127.0.0.1 at a free port, with a random token, ``--allow-root`` and
``--no-browser``, in its own process group; stopping it kills that group (server and kernels),
also when a test fails.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import LabServer, _free_port  # noqa: F401 - test_start imports them too

# PyTorch's OpenMP threads sleep when idle instead of spinning (unless the user chose a policy):
# set before anything imports torch, for this process and for every kernel, server and
# subprocess the suite starts (they inherit it). On a busy 2-core machine spinning threads
# made training steps several times slower (issue 9's measurements).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def start_lab(
    root: Path,
    *,
    config_dir: Path,
    env: dict | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = 120,
) -> LabServer:
    """Start ``jupyter lab`` serving ``root``; return once /api/status answers 200."""
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
        command = [
            sys.executable, "-m", "jupyterlab",
            "--allow-root", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
            *extra_args,
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, cwd=root, env=full_env, stdout=log, stderr=subprocess.STDOUT,
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


@pytest.fixture(scope="session")
def jupyter_lab():
    """Factory ``jupyter_lab(root, config_dir=..., env=..., extra_args=...) -> LabServer``.

    Callers stop their server when done (``server.stop()``); anything left running is
    stopped at the end of the session.
    """
    servers: list[LabServer] = []

    def start(root: Path, **kwargs) -> LabServer:
        server = start_lab(root, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
