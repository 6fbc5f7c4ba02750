"""A whole class, end to end, with the real parts: the hub, its proxy, Unix accounts, a browser.

As root on Linux, with configurable-http-proxy from npm (`.ci/run` installs it):

1. `python -m course_utils classroom setup` (under a temporary prefix instead of /etc and
   /srv) makes the course account (the instructor) and its course folder, the exchange and
   the hub's settings; the test starts JupyterHub with the shipped classroom/jupyterhub_config.py
   on 127.0.0.1 and a free port; `classroom roster` adds three students (Unix accounts, the
   hub's nbgrader group, nbgrader's gradebook) while the hub runs.
2. Each student's server is spawned through the hub's REST API, and runs as that student with
   COURSE_THREADS set to the CPU limit.
3. nbgrader's commands run as each user (runuser: that account's rights): the instructor
   releases lab 00 and lab 04, the students fetch; one submits the solution, one the untouched
   release, one a notebook with a wrong exercise; the instructor collects, autogrades in the
   sandbox, generates and releases feedback, exports grades; the students fetch feedback.
4. A student cannot read another's work or the instructor's course folder.
5. A student logs in to the hub in Chromium (PAM, the password `roster` gave) and sees lab 00.

Accounts are named ctinst<hex>/ctstu<n><hex>; they, their processes and homes are removed
afterwards, also when a step fails, and stale ones from an interrupted run at the start.
The environment the users run is the test's own: the folders above it (the venv, the Python
it was made from, even under /root with pyenv, and the checkout) get the "x" bit for others
while the test runs, restored afterwards.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import pwd
import re
import resource
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COURSE = "llm-architectures"
LAB00, LAB04 = "00_start_here", "04_encoder_only"
STALE = re.compile(r"^ct(inst|stu\d)[0-9a-f]{4}$")
CHROMIUM = os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [pytest.mark.slow, pytest.mark.classroom]


def _missing() -> str:
    if sys.platform != "linux":
        return "Linux only"
    if os.geteuid() != 0:
        return "needs root (it creates Unix accounts)"
    if not shutil.which("configurable-http-proxy"):
        return "configurable-http-proxy missing: npm install -g configurable-http-proxy"
    for tool in ("useradd", "userdel", "chpasswd", "runuser", "bwrap"):
        if not shutil.which(tool):
            return f"{tool} missing"
    try:
        import jupyterhub  # noqa: F401
        import jupyterhub_idle_culler  # noqa: F401
    except ImportError:
        return 'jupyterhub missing: pip install -e ".[classroom]"'
    return ""


if _missing():
    pytest.skip(_missing(), allow_module_level=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_of(user: str) -> list[int]:
    uid = pwd.getpwnam(user).pw_uid
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
    return found


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (by parent id, from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat_line = (entry / "stat").read_text()
                ppid = int(stat_line.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def remove_user(user: str) -> None:
    """Kill every process of ``user`` (by its uid), then remove the account and its home."""
    with contextlib.suppress(KeyError):
        for _ in range(20):
            pids = pids_of(user)
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        subprocess.run(["userdel", "--remove", "--force", user], capture_output=True)


class Hub:
    """What the tests need to talk to the hub and to act as its users."""

    def __init__(self, prefix: Path, settings: dict[str, str], instructor, students):
        self.prefix, self.settings = prefix, settings
        self.instructor, self.students = instructor, students
        self.url = f"http://127.0.0.1:{settings['COURSE_HUB_PORT']}"
        self.course_dir = Path(settings["COURSE_DIR"])
        self.passwords: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}  # CPU seconds of the commands run as users

    def api(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + "/hub/api" + path, data=data, method=method)
        request.add_header("Authorization", f"token {self.settings['COURSE_HUB_ADMIN_TOKEN']}")
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else None

    def env(self, user: str) -> dict[str, str]:
        home = pwd.getpwnam(user).pw_dir
        return {
            "HOME": home,
            "USER": user,
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "JUPYTER_CONFIG_PATH": self.settings["COURSE_JUPYTER_CONFIG"],
            "COURSE_SANDBOX": "require",  # autograde must run in bubblewrap, or fail
            "OMP_WAIT_POLICY": "PASSIVE",
        }

    def as_user(self, user: str, *cmd: str, cwd: Path | None = None, check=True):
        """Run ``cmd`` as ``user`` with that account's rights, in its home (or ``cwd``)."""
        env = [f"{k}={v}" for k, v in self.env(user).items()]
        done = subprocess.run(
            ["runuser", "-u", user, "--", "env", "-i", *env, *cmd],
            cwd=cwd or pwd.getpwnam(user).pw_dir,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} as {user} failed ({done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def nbgrader(self, user: str, *args: str, cwd: Path | None = None):
        started, cpu = time.monotonic(), _children_cpu()
        done = self.as_user(user, sys.executable, "-m", "nbgrader", *args, cwd=cwd)
        key = f"{args[0]} {args[1] if len(args) > 1 else ''}".strip()
        self.timings[key] = self.timings.get(key, 0.0) + time.monotonic() - started
        self.cpu[key] = self.cpu.get(key, 0.0) + _children_cpu() - cpu
        return done


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _open_for_others(path: Path, restore: list[tuple[Path, int]]) -> None:
    """Let every user traverse ``path``'s folders (the environment all users run)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            restore.append((folder, stat.S_IMODE(mode)))
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH | stat.S_IROTH)


@pytest.fixture(scope="module")
def hub():
    for entry in pwd.getpwall():  # accounts left by an interrupted run
        if STALE.match(entry.pw_name):
            remove_user(entry.pw_name)
    suffix = secrets.token_hex(2)
    instructor = f"ctinst{suffix}"
    students = [f"ctstu{i}{suffix}" for i in (1, 2, 3)]
    prefix = Path(tempfile.mkdtemp(prefix="classroom-"))
    prefix.chmod(0o755)
    restore: list[tuple[Path, int]] = []
    process = None
    log = prefix / "jupyterhub.log"
    try:
        # The environment every user runs (here: the test's own, and the Python it was made
        # from, which pyenv may keep under /root) must be reachable by them.
        _open_for_others(Path(sys.prefix), restore)
        _open_for_others(Path(sys.base_prefix), restore)
        _open_for_others(Path(os.path.realpath(sys.executable)).parent, restore)
        _open_for_others(REPO, restore)
        port = free_port()
        command = [sys.executable, "-m", "course_utils", "classroom", "--prefix", str(prefix)]
        started = time.monotonic()
        run(
            [*command, "setup", "--instructor", instructor, "--course-account", instructor,
             "--port", str(port), "--cpu-limit", "1", "--mem-limit", "2G"],
            cwd=REPO,
        )  # fmt: skip
        setup_seconds = time.monotonic() - started
        settings = dict(
            line.split("=", 1)
            for line in (prefix / "etc/jupyterhub/classroom.env").read_text().splitlines()
        )
        hub_env = {
            **os.environ,
            **settings,
            "COURSE_HUB_IP": "127.0.0.1",
            "COURSE_HUB_API_PORT": str(free_port()),
            "COURSE_PROXY_API_PORT": str(free_port()),
            "COURSE_FORMGRADER_PORT": str(free_port()),
        }
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f",
                 str(prefix / "etc/jupyterhub/jupyterhub_config.py")],
                cwd=settings["COURSE_HUB_STATE"], env=hub_env, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        h = Hub(prefix, settings, instructor, students)
        h.log = log
        h.timings["setup"] = setup_seconds
        deadline = time.monotonic() + 180  # a busy machine: 43 s seen under load 12
        while True:
            try:
                h.api("GET", "/")
                break
            except (urllib.error.URLError, OSError):
                if process.poll() is not None or time.monotonic() > deadline:
                    message = "the hub did not start:\n" + log.read_text()[-4000:]
                    raise AssertionError(message) from None
                time.sleep(0.5)
        h.timings["hub start"] = time.monotonic() - started - setup_seconds
        # The roster, while the hub runs: accounts, the hub's group, the gradebook.
        roster = prefix / "roster.csv"
        roster.write_text(
            "username,first_name,last_name,email\n"
            + "".join(f"{s},Student,{i},\n" for i, s in enumerate(students, 1))
        )
        started = time.monotonic()
        run([*command, "roster", str(roster)], cwd=REPO)
        h.timings["roster"] = time.monotonic() - started
        for line in (prefix / "etc/jupyterhub/new-passwords.csv").read_text().splitlines():
            name, password = line.split(",", 1)
            h.passwords[name] = password
        yield h
    finally:
        # The hub's services (the idle culler) may outlive it: note its whole process tree.
        spawned = descendants(process.pid) if process is not None else []
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the hub stops its proxy and servers
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in spawned:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for name in [instructor, *students]:
            remove_user(name)
        for folder, mode in reversed(restore):
            folder.chmod(mode)
        if os.environ.get("COURSE_KEEP_CLASSROOM_LOG") and log.exists():
            print(log.read_text()[-20000:])
        shutil.rmtree(prefix, ignore_errors=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get_without_redirect(url: str) -> tuple[int, str]:
    try:
        with urllib.request.build_opener(_NoRedirect).open(url, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", "")


def spawn(hub: Hub, user: str) -> None:
    with contextlib.suppress(urllib.error.HTTPError):  # 400: already running
        hub.api("POST", f"/users/{user}/server")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        server = (hub.api("GET", f"/users/{user}").get("servers") or {}).get("")
        if server and server.get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{user}'s server did not start:\n" + hub.log.read_text()[-4000:])


def wrong_bigram(notebook: dict) -> dict:
    """Lab 00's solution with one plausible mistake: bigram_counts returns zeros."""
    for cell in notebook["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "bigram_counts":
            cell["source"] = (
                "import torch\n\n\ndef bigram_counts(ids, vocab_size):\n"
                "    return torch.zeros(vocab_size, vocab_size, dtype=torch.long)\n"
            )
            return notebook
    raise AssertionError("lab 00 has no bigram_counts cell")


def put(hub: Hub, user: str, lab: str, notebook: dict) -> None:
    """Write ``notebook`` over ``user``'s fetched copy of ``lab``, owned by ``user``."""
    path = Path(pwd.getpwnam(user).pw_dir) / lab / f"{lab}.ipynb"
    assert path.is_file(), f"{user} did not fetch {lab}"
    path.write_text(json.dumps(notebook))
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def code_scores(hub: Hub, lab: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{hub.course_dir / 'gradebook.db'}") as gradebook:
        return {
            s.student.id: s.code_score
            for s in gradebook.find_assignment(lab).submissions
        }  # fmt: skip


def test_a_term_in_a_class(hub: Hub):
    inst, (full, untouched, one_wrong) = hub.instructor, hub.students
    course = hub.course_dir
    # Each student's server, through the hub's REST API, runs as that student, and the CPU
    # limit reaches the course's thread choice.
    started = time.monotonic()
    for student in hub.students:
        spawn(hub, student)
    hub.timings["spawn 3 servers"] = time.monotonic() - started
    uid = pwd.getpwnam(full).pw_uid
    servers = [
        pid for pid in pids_of(full)
        if b"jupyterhub-singleuser" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]  # fmt: skip
    assert servers, f"no jupyterhub-singleuser process runs as {full}"
    assert Path(f"/proc/{servers[0]}").stat().st_uid == uid
    environ = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{servers[0]}/environ").read_text().split("\0")
        if "=" in item
    )
    assert environ.get("COURSE_THREADS") == "1", environ.get("COURSE_THREADS")
    threads = hub.as_user(
        full, "env", f"COURSE_THREADS={environ['COURSE_THREADS']}", sys.executable, "-c",
        "from course_utils.profiles import apply_threads; print(apply_threads())",
    ).stdout.split()  # fmt: skip
    assert threads[-1] == "1"

    # The course's formgrader runs as the course account, behind the hub's login.
    grader = [
        pid for pid in pids_of(inst)
        if b"formgrader" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]  # fmt: skip
    assert grader, "the formgrader service does not run as the course account"
    status, location = _get_without_redirect(f"{hub.url}/services/{COURSE}/formgrader")
    assert status == 302 and "/hub/" in location, (status, location)

    # The instructor releases lab 00 and lab 04 through the exchange.
    for lab in (LAB00, LAB04):
        hub.nbgrader(inst, "generate_assignment", lab, "--force", cwd=course)
        hub.nbgrader(inst, "release_assignment", lab, cwd=course)
    done = hub.nbgrader(full, "list")
    listed = done.stdout + done.stderr
    assert LAB00 in listed and LAB04 in listed, listed

    # The students fetch them, work, and submit.
    for student in hub.students:
        for lab in (LAB00, LAB04):
            hub.nbgrader(student, "fetch_assignment", lab)
    solution00 = json.loads((REPO / "solutions" / LAB00 / f"{LAB00}.ipynb").read_text())
    solution04 = json.loads((REPO / "solutions" / LAB04 / f"{LAB04}.ipynb").read_text())
    put(hub, full, LAB00, solution00)
    put(hub, full, LAB04, solution04)
    put(hub, one_wrong, LAB00, wrong_bigram(solution00))
    for student in hub.students:
        hub.nbgrader(student, "submit", LAB00)
    hub.nbgrader(full, "submit", LAB04)  # lab 04 costs ~20 s to grade: one submission

    # Nobody reads another's work or the instructor's course folder.
    probe = (
        "import os, sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        (os.listdir if os.path.isdir(path) else open)(path)\n"
        "        print('read', path)\n"
        "    except PermissionError:\n"
        "        print('PermissionError', path)\n"
    )
    others = [
        f"{pwd.getpwnam(full).pw_dir}/{LAB00}/{LAB00}.ipynb",
        str(course),
        str(course / "solutions" / LAB00 / f"{LAB00}.ipynb"),
        str(hub.prefix / "srv/nbgrader/exchange" / COURSE / "inbound"),
    ]
    seen = hub.as_user(untouched, sys.executable, "-c", probe, *others).stdout.splitlines()
    assert seen == [f"PermissionError {p}" for p in others], seen

    # The instructor collects, autogrades (sandboxed), gives feedback and exports grades.
    for lab in (LAB00, LAB04):
        hub.nbgrader(inst, "collect", lab, cwd=course)
        assert (course / "submitted" / full / lab / f"{lab}.ipynb").is_file()
        hub.nbgrader(inst, "autograde", lab, cwd=course)
        hub.nbgrader(inst, "generate_feedback", lab, cwd=course)
        hub.nbgrader(inst, "release_feedback", lab, cwd=course)
    hub.nbgrader(inst, "export", cwd=course)
    scores = code_scores(hub, LAB00)
    assert scores == {full: 3.0, untouched: 0.0, one_wrong: 1.0}, scores
    assert code_scores(hub, LAB04) == {full: 14.0}
    with (course / "grades.csv").open() as handle:
        rows = {
            (r["assignment"], r["student_id"]): float(r["score"]) for r in csv.DictReader(handle)
        }
    assert rows[(LAB00, full)] == 3.0 and rows[(LAB04, full)] == 14.0, rows

    # Each student fetches feedback.
    for student in hub.students:
        hub.nbgrader(student, "fetch_feedback", LAB00)
        pages = list((Path(pwd.getpwnam(student).pw_dir) / LAB00 / "feedback").glob("*/*.html"))
        assert pages, f"{student} got no feedback"
        assert all(p.stat().st_uid == pwd.getpwnam(student).pw_uid for p in pages)
    hub.nbgrader(full, "fetch_feedback", LAB04)
    print("\nclassroom wall seconds:", json.dumps({k: round(v, 1) for k, v in hub.timings.items()}))
    print("classroom CPU seconds of the nbgrader commands:", json.dumps(
        {k: round(v, 1) for k, v in hub.cpu.items()}), f"total {sum(hub.cpu.values()):.1f}",
        f"load {os.getloadavg()}")  # fmt: skip


@pytest.mark.browser
def test_a_student_logs_in_and_sees_lab_00(hub: Hub):
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium missing")
    from playwright.sync_api import sync_playwright

    student = hub.students[1]
    if not (Path(pwd.getpwnam(student).pw_dir) / LAB00).is_dir():
        hub.nbgrader(hub.instructor, "generate_assignment", LAB00, "--force", cwd=hub.course_dir)
        hub.nbgrader(hub.instructor, "release_assignment", LAB00, cwd=hub.course_dir)
        hub.nbgrader(student, "fetch_assignment", LAB00)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page()
            page.goto(f"{hub.url}/hub/login", timeout=60_000)
            page.fill("input[name=username]", student)
            page.fill("input[name=password]", hub.passwords[student])
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url(re.compile(rf".*/user/{student}/lab.*"), timeout=120_000)
            page.get_by_text(LAB00, exact=True).first.wait_for(timeout=120_000)
        finally:
            browser.close()
