"""JupyterHub for one class on one Linux server, in the shape of The Littlest JupyterHub.

- jupyterhub from PyPI, its proxy configurable-http-proxy from npm;
- one Unix account per learner (PAM: the accounts' own passwords), each learner's server runs
  as that account;
- nbgrader's exchange in its standard place, /srv/nbgrader/exchange, with the course id set
  (the shared nbgrader_config.py that `classroom setup` writes);
- the groups nbgrader's documentation uses for "one class, multiple graders":
  ``formgrade-<course>`` (instructors and graders: they reach the course's formgrader, a hub
  service running as the course account) and ``nbgrader-<course>`` (students);
- an idle culler (jupyterhub-idle-culler, a hub service);
- per-user CPU and memory limits: SystemdSpawner (jupyterhub-systemdspawner, what TLJH uses)
  enforces them through systemd (CPUQuota, MemoryMax) where systemd runs; elsewhere (a
  container) the servers run as their users without a cgroup of their own and only the thread
  count below applies. Either way COURSE_THREADS, the course's thread choice
  (course_utils.profiles.thread_count), is set to the CPU limit, so each kernel uses the cores
  it was given.

Every setting an instructor changes comes from the environment, which `classroom setup` writes
to /etc/jupyterhub/classroom.env (read by the jupyterhub systemd unit). The test
tests/classroom/ starts this file as it is, with other values.
"""

import math
import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - provided by JupyterHub when it reads this file


def setting(name, default):
    value = os.environ.get(name, "").strip()
    return value or default


COURSE = setting("COURSE_ID", "llm-architectures")
GRADER = setting("COURSE_GRADER", f"grader-{COURSE}")  # the Unix account owning the course
COURSE_DIR = setting("COURSE_DIR", f"/home/{GRADER}/{COURSE}")
INSTRUCTORS = [n for n in setting("COURSE_INSTRUCTORS", "").replace(",", " ").split() if n]
STATE = Path(setting("COURSE_HUB_STATE", "/srv/jupyterhub"))
ROSTER = Path(setting("COURSE_ROSTER", str(STATE / "roster.txt")))  # one user name a line
ENV = Path(setting("COURSE_ENV", sys.prefix))  # the Python environment every user runs
JUPYTER_CONFIG = setting("COURSE_JUPYTER_CONFIG", "/etc/jupyter")  # shared nbgrader_config.py
CPU_LIMIT = float(setting("COURSE_CPU_LIMIT", "1"))
MEM_LIMIT = setting("COURSE_MEM_LIMIT", "2G")
CULL_AFTER = int(setting("COURSE_CULL_AFTER", "3600"))  # seconds idle before a server stops
SPAWNER = setting("COURSE_SPAWNER", "auto")  # auto | systemd | local

# --- the hub and its proxy ------------------------------------------------------------------
c.JupyterHub.ip = setting("COURSE_HUB_IP", "")
c.JupyterHub.port = int(setting("COURSE_HUB_PORT", "80"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(setting("COURSE_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{setting('COURSE_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [
    shutil.which("configurable-http-proxy") or "configurable-http-proxy"
]
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True

# --- who may log in ---------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "pam"  # real Unix accounts and their passwords
c.PAMAuthenticator.open_sessions = False  # no systemd-logind session per login in a container
roster = [n.strip() for n in (ROSTER.read_text().split() if ROSTER.is_file() else []) if n.strip()]
c.Authenticator.admin_users = set(INSTRUCTORS)
c.Authenticator.allowed_users = set(INSTRUCTORS) | set(roster)
c.Authenticator.allow_existing_users = True  # students added through the API, no restart
c.Authenticator.delete_invalid_users = True

# --- nbgrader: one class, several graders -----------------------------------------------------
FORMGRADE, STUDENTS = f"formgrade-{COURSE}", f"nbgrader-{COURSE}"
c.JupyterHub.load_groups = {
    FORMGRADE: {"users": INSTRUCTORS},
    STUDENTS: {"users": roster},
}
c.JupyterHub.load_roles = [
    # Instructors and graders reach the course's formgrader service.
    {"name": FORMGRADE, "groups": [FORMGRADE], "scopes": [f"access:services!service={COURSE}"]},
    # Students see that the course exists (nbgrader's course list).
    {
        "name": STUDENTS,
        "groups": [STUDENTS],
        "scopes": [f"read:services!service={COURSE}", "list:services"],
    },
    {
        "name": "idle-culler",
        "services": ["idle-culler"],
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    },
    {
        # `classroom roster` adds students through the hub's API with this service's token.
        "name": "classroom-admin",
        "services": ["classroom-admin"],
        "scopes": ["admin:users", "admin:groups", "admin:servers", "access:servers"],
    },
]
services = [
    {
        "name": "idle-culler",
        "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={CULL_AFTER}"],
    },
]
admin_token = setting("COURSE_HUB_ADMIN_TOKEN", "")
if admin_token:
    services.append({"name": "classroom-admin", "api_token": admin_token})
if setting("COURSE_FORMGRADER", "1") == "1" and Path(COURSE_DIR).is_dir():
    # nbgrader's formgrader, shared by every grader, running as the course account in the
    # course folder (nbgrader's "one class, multiple graders").
    services.append(
        {
            "name": COURSE,
            "url": f"http://127.0.0.1:{setting('COURSE_FORMGRADER_PORT', '9999')}",
            "command": [
                str(ENV / "bin" / "jupyterhub-singleuser"),
                "--ServerApp.jpserver_extensions=nbgrader.server_extensions.formgrader=True",
            ],
            "user": GRADER,
            "cwd": COURSE_DIR,
            "environment": {
                "JUPYTERHUB_DEFAULT_URL": "/formgrader",
                "JUPYTER_CONFIG_PATH": JUPYTER_CONFIG,
                "PATH": f"{ENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                # ---- per-course secret for the hidden tests (issue 21) -------------------
                # It belongs here (the course account grades) or in the course folder's
                # nbgrader_config.py, never in c.Spawner.environment (learners). If it is an
                # environment variable, pass it through from classroom.env, e.g.
                # "COURSE_SECRET": setting("COURSE_SECRET", ""),
            },
            "oauth_no_confirm": True,
        }
    )
c.JupyterHub.services = services

# --- each learner's server ---------------------------------------------------------------------
if SPAWNER == "auto":
    SPAWNER = "systemd" if Path("/run/systemd/system").is_dir() else "local"
if SPAWNER == "systemd":
    # Enforced by systemd: CPUQuota and MemoryMax on each user's unit (as TLJH does).
    c.JupyterHub.spawner_class = "systemdspawner.SystemdSpawner"
    c.SystemdSpawner.isolate_tmp = True
    c.SystemdSpawner.isolate_devices = True
    c.SystemdSpawner.disable_user_sudo = True
    c.SystemdSpawner.default_shell = "/bin/bash"
else:
    # No systemd (a container): servers run as their Unix users, limits are not enforced by
    # the kernel; COURSE_THREADS below still keeps each learner's PyTorch to its share.
    c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
c.Spawner.cpu_limit = CPU_LIMIT
c.Spawner.mem_limit = MEM_LIMIT
c.Spawner.cmd = [str(ENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 120
c.Spawner.environment = {
    # The course's thread choice follows the CPU limit (and the cgroup quota under systemd).
    "COURSE_THREADS": str(max(1, math.ceil(CPU_LIMIT - 1e-9))),
    "OMP_WAIT_POLICY": "PASSIVE",  # idle PyTorch threads sleep instead of spinning
    "JUPYTER_CONFIG_PATH": JUPYTER_CONFIG,  # the shared nbgrader_config.py: exchange, course id
    "PATH": f"{ENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
    # ---- per-course secret for the hidden tests (issue 21) ------------------------------
    # Never here: learners' servers must not receive it (see the formgrader service above).
}
