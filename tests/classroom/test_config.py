"""The classroom's configuration files, read without a hub, a cluster or root (seconds).

- classroom/jupyterhub_config.py, loaded as JupyterHub loads it: the CPU limit reaches the
  course's thread choice, systemd's spawner enforces the limits where systemd runs, the
  nbgrader groups, the idle culler;
- the roster parser: bad rows fail with one clear line;
- classroom/z2jh/values.yaml against the Zero to JupyterHub chart's keys (no schema of the
  chart ships in a package this suite can install, and no helm or cluster runs here: what
  only a cluster checks is listed in the README), and its image without solutions/.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from pathlib import Path

import pytest
import yaml

from course_utils import config
from course_utils.tooling.classroom import ClassroomError, read_roster

REPO = Path(__file__).resolve().parents[2]
HUB_CONFIG = REPO / "classroom" / "jupyterhub_config.py"
VALUES = REPO / "classroom" / "z2jh" / "values.yaml"
DOCKERFILE = REPO / "classroom" / "z2jh" / "Dockerfile"
COURSE = config.COURSE_ID


def load_hub_config(monkeypatch, **env):
    from traitlets.config import Config

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    c = Config()
    exec(compile(HUB_CONFIG.read_text(), str(HUB_CONFIG), "exec"), {"get_config": lambda: c})
    return c


@pytest.mark.parametrize(("cpus", "threads"), [("1", "1"), ("2", "2"), ("1.5", "2"), ("0.5", "1")])
def test_the_cpu_limit_reaches_the_course_thread_choice(monkeypatch, cpus, threads):
    c = load_hub_config(monkeypatch, COURSE_CPU_LIMIT=cpus, COURSE_SPAWNER="local")
    assert c.Spawner.cpu_limit == float(cpus)
    assert c.Spawner.environment["COURSE_THREADS"] == threads
    monkeypatch.setenv("COURSE_THREADS", threads)
    from course_utils.profiles import thread_count

    assert thread_count() == int(threads)


def test_systemd_enforces_the_limits_where_it_runs(monkeypatch):
    c = load_hub_config(monkeypatch, COURSE_SPAWNER="systemd", COURSE_MEM_LIMIT="3G")
    assert c.JupyterHub.spawner_class == "systemdspawner.SystemdSpawner"
    assert c.Spawner.mem_limit == "3G"
    assert c.SystemdSpawner.disable_user_sudo is True
    c = load_hub_config(monkeypatch, COURSE_SPAWNER="local")
    assert c.JupyterHub.spawner_class == "jupyterhub.spawner.LocalProcessSpawner"


def test_groups_culler_and_exchange_settings(monkeypatch, tmp_path):
    (tmp_path / "roster.txt").write_text("ann\nbob\n")
    c = load_hub_config(
        monkeypatch,
        COURSE_INSTRUCTORS="teach,help",
        COURSE_HUB_STATE=str(tmp_path),
        COURSE_JUPYTER_CONFIG="/etc/jupyter",
    )
    groups = c.JupyterHub.load_groups
    assert groups[f"formgrade-{COURSE}"]["users"] == ["teach", "help"]
    assert groups[f"nbgrader-{COURSE}"]["users"] == ["ann", "bob"]
    assert c.Authenticator.allowed_users == {"teach", "help", "ann", "bob"}
    assert c.Authenticator.admin_users == {"teach", "help"}
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert "jupyterhub_idle_culler" in services["idle-culler"]["command"]
    assert c.Spawner.environment["JUPYTER_CONFIG_PATH"] == "/etc/jupyter"
    assert c.JupyterHub.authenticator_class == "pam"


def test_roster_rows(tmp_path):
    roster = tmp_path / "r.csv"
    roster.write_text("username,first_name\nann,Ann\nbob,\n\n")
    assert [r["username"] for r in read_roster(roster)] == ["ann", "bob"]
    roster.write_text("ann\ncarl\n")  # no header: the first column is the user name
    assert [r["username"] for r in read_roster(roster)] == ["ann", "carl"]
    roster.write_text("username\nAnn Smith\n")
    with pytest.raises(ClassroomError, match="not a valid user name"):
        read_roster(roster)


# --- Zero to JupyterHub -------------------------------------------------------------------------

# Keys of the chart's values schema (jupyterhub chart 3.x/4.x) that values.yaml may use.
CHART_KEYS = {
    "": {"hub", "proxy", "singleuser", "cull", "scheduling", "prePuller", "ingress", "debug",
         "rbac", "global", "imagePullSecret", "imagePullSecrets", "custom", "fullnameOverride",
         "nameOverride", "enabled"},
    "hub": {"config", "loadRoles", "extraConfig", "extraEnv", "services", "db", "image",
            "resources", "baseUrl", "cookieSecret", "networkPolicy", "extraVolumes",
            "extraVolumeMounts", "extraFiles", "allowNamedServers", "concurrentSpawnLimit",
            "activeServerLimit", "consecutiveFailureLimit", "shutdownOnLogout", "templatePaths",
            "templateVars", "authenticatePrometheus", "nodeSelector", "tolerations"},
    "singleuser": {"image", "defaultUrl", "cpu", "memory", "extraEnv", "storage",
                   "lifecycleHooks", "extraFiles", "initContainers", "profileList", "cmd",
                   "startTimeout", "networkPolicy", "uid", "fsGid", "serviceAccountName",
                   "extraResource", "extraLabels", "extraAnnotations", "nodeSelector",
                   "extraTolerations", "allowPrivilegeEscalation", "extraContainers",
                   "extraPodConfig", "extraNodeAffinity", "events", "podNameTemplate"},
    "singleuser.cpu": {"guarantee", "limit"},
    "singleuser.memory": {"guarantee", "limit"},
    "singleuser.image": {"name", "tag", "pullPolicy", "pullSecrets"},
    "singleuser.storage": {"type", "capacity", "homeMountPath", "dynamic", "static",
                           "extraVolumes", "extraVolumeMounts", "extraLabels"},
    "cull": {"enabled", "timeout", "every", "users", "adminUsers", "removeNamedServers",
             "concurrency", "maxAge"},
    "scheduling": {"userScheduler", "podPriority", "userPlaceholder", "corePods", "userPods"},
}  # fmt: skip


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def _at(tree: dict, dotted: str):
    for part in [p for p in dotted.split(".") if p]:
        tree = tree[part]
    return tree


@pytest.mark.parametrize("section", sorted(CHART_KEYS))
def test_values_use_the_charts_keys(section):
    node = _at(values(), section)
    unknown = set(node) - CHART_KEYS[section]
    assert not unknown, f"{section or 'top level'}: keys the chart does not have: {unknown}"


def _bytes(text) -> float:
    number, unit = re.fullmatch(r"([\d.]+)\s*([KMGT]?)i?", str(text)).groups()
    return float(number) * 1024 ** "_KMGT".index(unit or "_")


def test_values_limits_guarantees_threads_and_culler():
    single = values()["singleuser"]
    assert 0 < float(single["cpu"]["guarantee"]) <= float(single["cpu"]["limit"])
    assert 0 < _bytes(single["memory"]["guarantee"]) <= _bytes(single["memory"]["limit"])
    threads = math.ceil(float(single["cpu"]["limit"]))
    assert single["extraEnv"]["COURSE_THREADS"] == str(threads)
    assert single["storage"]["type"] == "dynamic" and single["storage"]["capacity"]
    cull = values()["cull"]
    assert cull["enabled"] is True and cull["timeout"] > 0


def test_values_groups_match_nbgrader_and_the_hub_config():
    roles = values()["hub"]["loadRoles"]
    assert roles[f"formgrade-{COURSE}"]["scopes"] == [f"access:services!service={COURSE}"]
    assert roles[f"nbgrader-{COURSE}"]["groups"] == [f"nbgrader-{COURSE}"]
    snippets = values()["hub"]["extraConfig"]
    for name, code in snippets.items():
        compile(code, name, "exec")
    assert "ngshare" in snippets["10-ngshare"]
    exchange = values()["singleuser"]["extraFiles"]["nbgrader-config"]["stringData"]
    compile(exchange, "nbgrader_config.py", "exec")
    assert f'course_id = "{COURSE}"' in exchange


def test_nbgitpuller_pulls_the_learners_branch_of_this_repository():
    hook = values()["singleuser"]["lifecycleHooks"]["postStart"]["exec"]["command"]
    assert hook[0] == "gitpuller" and hook[1] == config.github_url()
    link = re.search(r"https://HUB/hub/user-redirect/git-pull\?\S+", VALUES.read_text()).group(0)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["repo"] == [config.github_url()] and query["branch"] == [hook[2]]
    # The learners' branch is notebooks/ split off (README): the lab is at its root.
    target = query["urlpath"][0].removeprefix(f"lab/tree/{hook[3]}/")
    assert (REPO / "notebooks" / target).is_file(), target


def test_the_student_image_never_holds_solutions():
    lines = [ln.split() for ln in DOCKERFILE.read_text().splitlines() if ln.startswith("COPY")]
    sources = [word for line in lines for word in line[1:-1] if not word.startswith("--")]
    assert sources, "the Dockerfile copies nothing"
    assert not any(s in (".", "./", "*") or s.startswith("solutions") for s in sources), sources
    assert "course_utils" in sources
