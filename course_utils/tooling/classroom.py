"""A class on one Linux server: JupyterHub + nbgrader's exchange (``classroom/``).

``python -m course_utils classroom setup [--instructor NAME ...]`` (as root, after
``classroom/setup.sh`` installed the environment) makes the course account and its course
folder, nbgrader's exchange, the shared nbgrader configuration, the hub's settings and its
systemd unit. ``python -m course_utils classroom roster CSV`` adds students: a Unix account
each (home folder readable by its owner only, a first password), the hub's student group, and
nbgrader's gradebook.

``--prefix DIR`` puts every system path (/etc, /srv) under DIR: tests/classroom/ uses it to
build a whole class on a shared machine without touching the machine's own configuration.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .. import config
from .course_dir import CourseError, find_root

NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # what useradd accepts everywhere


class ClassroomError(Exception):
    """A problem the instructor can fix; printed on one line."""


@dataclass
class Paths:
    prefix: Path

    def _p(self, path: str) -> Path:
        return self.prefix / path.lstrip("/") if str(self.prefix) != "/" else Path(path)

    @property
    def exchange(self) -> Path:
        return self._p("/srv/nbgrader/exchange")

    @property
    def hub_state(self) -> Path:
        return self._p("/srv/jupyterhub")

    @property
    def hub_etc(self) -> Path:
        return self._p("/etc/jupyterhub")

    @property
    def jupyter_etc(self) -> Path:
        return self._p("/etc/jupyter")

    @property
    def env_file(self) -> Path:
        return self.hub_etc / "classroom.env"

    @property
    def roster(self) -> Path:
        return self.hub_state / "roster.txt"


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ClassroomError(
            f"{name!r} is not a valid user name: expected lower-case letters, digits, '-' or "
            "'_', starting with a letter, at most 32 characters"
        )
    return name


def exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def ensure_user(user: str) -> str | None:
    """Create the Unix account ``user`` (home readable by its owner only); return its first
    password, or None when the account already existed."""
    check_name(user)
    if exists(user):
        return None
    run(["useradd", "--create-home", "--shell", "/bin/bash", user])
    home = Path(pwd.getpwnam(user).pw_dir)
    home.chmod(0o700)  # classmates cannot read each other's work
    password = secrets.token_urlsafe(9)
    run(["chpasswd"], input=f"{user}:{password}\n")
    return password


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                values[name.strip()] = value.strip()
    return values


def as_user(user: str, cmd: list[str], cwd: Path, env: dict[str, str] | None = None):
    """Run ``cmd`` as ``user`` (runuser: that account's uid, gids and rights)."""
    extra = [f"{k}={v}" for k, v in (env or {}).items()]
    return run(["runuser", "-u", user, "--", "env", *extra, *cmd], cwd=cwd)


# --- setup ---------------------------------------------------------------------------------------


def setup(
    paths: Paths,
    *,
    instructors: list[str],
    course_account: str,
    port: int,
    cpu_limit: float,
    mem_limit: str,
    source: Path,
    systemd: bool | None = None,
) -> dict[str, str]:
    """Set up the class on this server; return the hub's settings (classroom.env)."""
    if os.geteuid() != 0:
        raise ClassroomError("classroom setup needs root (sudo)")
    for name in [course_account, *instructors]:
        check_name(name)
    course = config.COURSE_ID
    # 1. The course account owns the course folder: a copy of the whole repository (with
    #    solutions/, which learners never see: its home is readable by it alone).
    ensure_user(course_account)
    home = Path(pwd.getpwnam(course_account).pw_dir)
    course_dir = home / course
    if not course_dir.exists():
        ignore = shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", "gradebook.db"
        )
        shutil.copytree(source, course_dir, ignore=ignore)
        run(["chown", "-R", f"{course_account}:", str(course_dir)])
    # 2. nbgrader's exchange, writable by everyone as nbgrader's documentation says; nbgrader
    #    sets the rights of what it puts there (inbound: students can write, not list).
    paths.exchange.mkdir(parents=True, exist_ok=True)
    paths.exchange.chmod(0o777)
    # 3. The shared nbgrader configuration every user's server reads: course id and exchange.
    paths.jupyter_etc.mkdir(parents=True, exist_ok=True)
    (paths.jupyter_etc / "nbgrader_config.py").write_text(
        "# Written by `python -m course_utils classroom setup`: the course and its exchange.\n"
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {course!r}\n"
        f"c.Exchange.root = {str(paths.exchange)!r}\n"
    )
    # 4. The hub's settings, read by classroom/jupyterhub_config.py (root only: a token).
    paths.hub_state.mkdir(parents=True, exist_ok=True)
    paths.hub_state.chmod(0o700)
    paths.hub_etc.mkdir(parents=True, exist_ok=True)
    old = read_env_file(paths.env_file)
    settings = {
        "COURSE_ID": course,
        "COURSE_GRADER": course_account,
        "COURSE_DIR": str(course_dir),
        "COURSE_INSTRUCTORS": ",".join(dict.fromkeys([*instructors, course_account])),
        "COURSE_HUB_STATE": str(paths.hub_state),
        "COURSE_ENV": sys.prefix,
        "COURSE_JUPYTER_CONFIG": str(paths.jupyter_etc),
        "COURSE_HUB_PORT": str(port),
        "COURSE_CPU_LIMIT": f"{cpu_limit:g}",
        "COURSE_MEM_LIMIT": mem_limit,
        "COURSE_HUB_ADMIN_TOKEN": old.get("COURSE_HUB_ADMIN_TOKEN") or secrets.token_hex(32),
    }
    paths.env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    paths.env_file.chmod(0o600)
    shutil.copy2(source / "classroom" / "jupyterhub_config.py", paths.hub_etc)
    for name in instructors:
        if ensure_user(name):
            print(f"created account {name}: set its password with `passwd {name}`")
    # 5. The hub as a service (where systemd runs).
    if systemd is None:
        systemd = str(paths.prefix) == "/" and Path("/run/systemd/system").is_dir()
    if systemd:
        unit = Path("/etc/systemd/system/jupyterhub.service")
        unit.write_text(
            "[Unit]\nDescription=JupyterHub for the course " + course + "\n"
            "After=network.target\n\n[Service]\nUser=root\n"
            f"EnvironmentFile={paths.env_file}\n"
            f"WorkingDirectory={paths.hub_state}\n"
            f"Environment=PATH={sys.prefix}/bin:/usr/local/bin:/usr/bin:/bin\n"
            f"ExecStart={sys.prefix}/bin/jupyterhub -f {paths.hub_etc / 'jupyterhub_config.py'}\n"
            "Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n"
        )
        run(["systemctl", "daemon-reload"])
        run(["systemctl", "enable", "--now", "jupyterhub"])
        print(f"the hub runs on port {port} (systemctl status jupyterhub)")
    else:
        print(
            "no systemd here: start the hub with\n"
            f"  set -a; . {paths.env_file}; set +a; "
            f"{sys.prefix}/bin/jupyterhub -f {paths.hub_etc / 'jupyterhub_config.py'}"
        )
    return settings


# --- roster --------------------------------------------------------------------------------------


def read_roster(path: Path) -> list[dict[str, str]]:
    """Rows of a roster CSV: a ``username`` column (or the first column), optionally
    ``first_name``, ``last_name``, ``email``."""
    if not path.is_file():
        raise ClassroomError(f"{path}: no such roster file (a CSV with a username column)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ClassroomError(f"{path}: the roster is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    if "username" in header:
        body = rows[1:]
    else:
        header = ["username", "first_name", "last_name", "email"][: len(rows[0])]
        body = rows
    students = []
    for row in body:
        entry = {key: (row[i].strip() if i < len(row) else "") for i, key in enumerate(header)}
        entry["username"] = check_name(entry.get("username", ""))
        students.append(entry)
    return students


def hub_api(settings: dict[str, str], method: str, path: str, body=None):
    url = f"http://127.0.0.1:{settings.get('COURSE_HUB_PORT', '80')}/hub/api{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {settings['COURSE_HUB_ADMIN_TOKEN']}")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if text else None


def add_roster(paths: Paths, roster_csv: Path) -> Path:
    """Add the students of ``roster_csv``; return the file with the new accounts' passwords."""
    if os.geteuid() != 0:
        raise ClassroomError("classroom roster needs root (sudo)")
    settings = read_env_file(paths.env_file)
    if not settings:
        raise ClassroomError(f"{paths.env_file} is missing: run `classroom setup` first")
    students = read_roster(roster_csv)
    course, grader = settings["COURSE_ID"], settings["COURSE_GRADER"]
    # 1. Unix accounts.
    passwords = paths.hub_etc / "new-passwords.csv"
    with os.fdopen(
        os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a"
    ) as handle:
        for student in students:
            password = ensure_user(student["username"])
            if password:
                handle.write(f"{student['username']},{password}\n")
    # 2. The hub: allowed at the next start (roster.txt), and now through its API.
    known = set(paths.roster.read_text().split()) if paths.roster.is_file() else set()
    names = [s["username"] for s in students]
    paths.roster.write_text("".join(f"{n}\n" for n in sorted(known | set(names))))
    try:
        existing = {u["name"] for u in hub_api(settings, "GET", "/users")}
        new = [n for n in names if n not in existing]
        if new:
            hub_api(settings, "POST", "/users", {"usernames": new})
        hub_api(settings, "POST", f"/groups/nbgrader-{course}/users", {"users": names})
    except urllib.error.HTTPError as error:
        raise ClassroomError(f"the hub refused the roster: {error}") from None
    except (urllib.error.URLError, OSError) as error:
        print(f"the hub is not running ({error}); it adds the roster when it starts")
    # 3. nbgrader's gradebook, as the course account, in the course folder.
    table = paths.hub_etc / f"gradebook-import-{os.getpid()}.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "first_name", "last_name", "email"])
        for s in students:
            writer.writerow(
                [s["username"], s.get("first_name", ""), s.get("last_name", ""), s.get("email", "")]
            )
    try:
        os.chmod(table, 0o644)
        path = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        env = {"JUPYTER_CONFIG_PATH": settings["COURSE_JUPYTER_CONFIG"], "PATH": path}
        as_user(grader, [sys.executable, "-m", "nbgrader", "db", "student", "import", str(table)],
                cwd=Path(settings["COURSE_DIR"]), env=env)  # fmt: skip
    finally:
        table.unlink()
    print(f"added {len(students)} students; first passwords of new accounts in {passwords}")
    return passwords


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils classroom")
    parser.add_argument("--prefix", type=Path, default=Path("/"), help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup", help="set up the class on this server (root)")
    s.add_argument("--instructor", action="append", default=[], help="an instructor's account")
    s.add_argument("--course-account", default=f"grader-{config.COURSE_ID}")
    s.add_argument("--port", type=int, default=80)
    s.add_argument("--cpu-limit", type=float, default=1.0, help="CPUs per learner (default 1)")
    s.add_argument("--mem-limit", default="2G", help="memory per learner (default 2G)")
    r = sub.add_parser("roster", help="add the students of a CSV (root)")
    r.add_argument("csv", type=Path)
    args = parser.parse_args(argv)
    paths = Paths(args.prefix.resolve())
    try:
        if args.command == "setup":
            setup(
                paths,
                instructors=args.instructor,
                course_account=args.course_account,
                port=args.port,
                cpu_limit=args.cpu_limit,
                mem_limit=args.mem_limit,
                source=find_root(),
            )
        else:
            add_roster(paths, args.csv)
    except (ClassroomError, CourseError, subprocess.CalledProcessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
