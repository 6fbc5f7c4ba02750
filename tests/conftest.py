"""Shared fixtures. Only one: ``jupyter_lab``, which starts JupyterLab servers for the browser
and environment tests (tests/tooling/test_browser.py, tests/tooling/test_environments.py) and
stops them.

A server listens on 127.0.0.1 at a free port, with a random token, ``--allow-root`` and
``--no-browser``, in its own process group; stopping it kills that group (server and kernels),
also when a test fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import LabServer, start_lab

# PyTorch's OpenMP threads sleep when idle instead of spinning (unless the user chose a policy):
# set before anything imports torch, for this process and for every kernel, server and
# subprocess the suite starts (they inherit it). On a busy 2-core machine spinning threads
# made training steps several times slower (issue 9's measurements).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
