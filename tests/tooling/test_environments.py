"""Launch anywhere: Binder, conda, Colab.

- The package lists agree: pyproject.toml (``dependencies`` + the ``course`` extra),
  binder/requirements.txt and environment.yml name the same packages with compatible bounds,
  and both install a CPU build of PyTorch.
- Binder's post-build step hides nbgrader's instructor tools, and JupyterLab with those
  settings starts and serves the course (a real server on 127.0.0.1, stopped by its pid).
- Colab: every notebook starts with the generated setup cell, which does nothing anywhere
  else; the launch badges point at the notebook; nothing names another repository than
  ``course_utils.config.REPOSITORY``; each lab's widgets use the ipywidgets 8 protocol
  that Colab's widget manager renders, and no output needs a JupyterLab-only renderer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import helpers
import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from course_utils import config
from course_utils.tooling import authoring

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
LABS = list(config.LAB_NAMES)
NOTEBOOKS = [(lab, kind) for lab in LABS for kind in ("student", "solution")]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

# conda-forge names of PyPI packages; conda packages that are not Python requirements.
CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch", "matplotlib-base": "matplotlib"}
CONDA_NOT_REQUIREMENTS = {"python", "pip", "cpuonly"}

# nbgrader 0.9.6: what learners must not see, and what they use.
HIDDEN_LAB_PLUGINS = [
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
]
KEPT_LAB_PLUGINS = ["@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment"]
HIDDEN_SERVER_EXTENSIONS = [
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
]
KEPT_SERVER_EXTENSIONS = [
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.validate_assignment",
]


def notebook_path(lab: str, kind: str) -> Path:
    folder = "notebooks" if kind == "student" else "solutions"
    return ROOT / folder / lab / f"{lab}.ipynb"


def read_notebook(lab: str, kind: str):
    path = notebook_path(lab, kind)
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} does not exist: build and release lab {lab}")
    return nbformat.read(path, as_version=4)


# ---------------------------------------------------------------------------------------------
# Package lists
# ---------------------------------------------------------------------------------------------


def _add(found: dict, name: str, spec: SpecifierSet, where: str) -> None:
    key = canonicalize_name(name)
    if key in found:
        raise AssertionError(f"{where}: {name} is listed twice")
    found[key] = spec


def pyproject_requirements() -> dict[str, SpecifierSet]:
    """What a learner's environment needs: ``dependencies`` plus the ``course`` extra."""
    project = PYPROJECT["project"]
    found: dict[str, SpecifierSet] = {}
    for line in project["dependencies"] + project["optional-dependencies"]["course"]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) != canonicalize_name(project["name"]):
            _add(found, requirement.name, requirement.specifier, "pyproject.toml")
    return found


def pip_requirements(path: Path) -> dict[str, SpecifierSet]:
    found: dict[str, SpecifierSet] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#") or line.startswith("-"):
            continue  # comments and options (--extra-index-url, -e .)
        requirement = Requirement(line)
        _add(found, requirement.name, requirement.specifier, str(path.relative_to(ROOT)))
    return found


def conda_spec(text: str) -> tuple[str, SpecifierSet]:
    """A conda match spec (``name``, ``name>=1.2``, ``name=1.2``, ``name 1.2 build``) as a
    PyPI name and specifier set. The build string is dropped."""
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*([^\s]*)\s*(\S*)", text.strip())
    if not match:
        raise AssertionError(f"cannot read the conda spec {text!r}")
    name, version, _build = match.groups()
    specifiers = []
    for part in filter(None, version.split(",")):
        if re.match(r"(==|!=|>=|<=|~=|>|<)", part):
            specifiers.append(part)
        elif part.startswith("="):  # conda's "=1.2" means 1.2.*
            specifiers.append(f"=={part[1:].rstrip('.*')}.*")
        else:
            specifiers.append(f"=={part}")
    return CONDA_TO_PYPI.get(name, name), SpecifierSet(",".join(specifiers))


def conda_requirements(path: Path) -> dict[str, SpecifierSet]:
    environment = yaml.safe_load(path.read_text(encoding="utf-8"))
    found: dict[str, SpecifierSet] = {}
    where = str(path.relative_to(ROOT))
    for entry in environment["dependencies"]:
        if isinstance(entry, dict):  # the pip: section
            for line in entry.get("pip", []):
                line = line.split(" #")[0].strip()
                if line and not line.startswith("-"):
                    requirement = Requirement(line)
                    _add(found, requirement.name, requirement.specifier, where)
            continue
        name, spec = conda_spec(entry)
        if name not in CONDA_NOT_REQUIREMENTS:
            _add(found, name, spec, where)
    return found


def _probes(*specs: SpecifierSet) -> list[Version]:
    """Versions around every bound named in ``specs``: just below, at, and just above."""
    probes = {Version("0.0.1"), Version("9999")}
    for spec in specs:
        for specifier in spec:
            release = Version(specifier.version.removesuffix(".*")).release
            probes.add(Version(".".join(map(str, release))))
            for i in range(len(release)):
                up = (*release[:i], release[i] + 1, *[0] * (len(release) - i - 1))
                probes.add(Version(".".join(map(str, up))))
                if release[i] > 0:
                    down = (*release[:i], release[i] - 1, *[99] * (len(release) - i - 1))
                    probes.add(Version(".".join(map(str, down))))
    return sorted(probes)


def incompatibilities(
    reference: dict[str, SpecifierSet], other: dict[str, SpecifierSet], where: str
) -> list[str]:
    """How ``other`` disagrees with pyproject.toml: packages missing or extra, and bounds that
    allow a version pyproject.toml forbids, or no version pyproject.toml allows."""
    problems = [f"{where} lacks {name} (pyproject.toml: {name}{reference[name]})"
                for name in sorted(set(reference) - set(other))]  # fmt: skip
    problems += [f"{where} has {name}, which pyproject.toml does not list"
                 for name in sorted(set(other) - set(reference))]  # fmt: skip
    for name in sorted(set(reference) & set(other)):
        ours, theirs = reference[name], other[name]
        probes = _probes(ours, theirs)
        looser = [v for v in probes if theirs.contains(v, True) and not ours.contains(v, True)]
        common = [v for v in probes if theirs.contains(v, True) and ours.contains(v, True)]
        if looser or not common:
            problems.append(
                f"{where}: {name}{theirs or ' (any version)'} is not within pyproject.toml's "
                f"{name}{ours or ' (any version)'}"
                + (f" (it allows {looser[0]})" if looser else " (no version satisfies both)")
            )
    return problems


def test_probe_logic_flags_looser_and_disjoint_bounds():
    reference = {"torch": SpecifierSet(">=2.2"), "nbgrader": SpecifierSet("==0.9.6")}
    assert not incompatibilities(reference, dict(reference), "same")
    tighter = {"torch": SpecifierSet(">=2.3,<3"), "nbgrader": SpecifierSet("==0.9.6")}
    assert not incompatibilities(reference, tighter, "tighter")
    looser = {"torch": SpecifierSet(">=2.1"), "nbgrader": SpecifierSet(">=0.9")}
    assert len(incompatibilities(reference, looser, "looser")) == 2
    disjoint = {"torch": SpecifierSet("<2.2"), "nbgrader": SpecifierSet("==0.9.6")}
    assert incompatibilities(reference, disjoint, "disjoint")
    assert conda_spec("nbgrader=0.9.6") == ("nbgrader", SpecifierSet("==0.9.6.*"))
    assert conda_spec("pytorch >=2.2 cpu*") == ("torch", SpecifierSet(">=2.2"))
    missing = incompatibilities(
        reference, {"torch": SpecifierSet(">=2.2"), "x": SpecifierSet()}, "m"
    )
    assert len(missing) == 2


def test_binder_requirements_match_pyproject():
    binder = pip_requirements(ROOT / "binder" / "requirements.txt")
    problems = incompatibilities(pyproject_requirements(), binder, "binder/requirements.txt")
    assert not problems, "\n".join(problems)


def test_conda_environment_matches_pyproject():
    conda = conda_requirements(ROOT / "environment.yml")
    problems = incompatibilities(pyproject_requirements(), conda, "environment.yml")
    assert not problems, "\n".join(problems)


def test_binder_and_conda_install_cpu_pytorch_and_a_supported_python():
    requires_python = SpecifierSet(PYPROJECT["project"]["requires-python"])
    requirements = (ROOT / "binder" / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(
        r"^--(extra-)?index-url https://download\.pytorch\.org/whl/cpu\s*$", requirements, re.M
    ), "binder/requirements.txt must take torch from PyTorch's CPU index"
    runtime = (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"python-(\d+\.\d+)", runtime)
    assert match and requires_python.contains(match.group(1)), (
        f"binder/runtime.txt {runtime!r}: not a Python that pyproject allows ({requires_python})"
    )

    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert environment["channels"][0] == "conda-forge", "environment.yml: conda-forge first"
    entries = [e for e in environment["dependencies"] if isinstance(e, str)]
    torch = [e for e in entries if conda_spec(e)[0] == "torch"]
    assert len(torch) == 1 and (
        torch[0].startswith("pytorch-cpu") or re.search(r"\scpu\*?$", torch[0])
    ), f"environment.yml must ask for conda-forge's CPU PyTorch (pytorch-cpu), got {torch}"
    python = [conda_spec(e)[1] for e in entries if conda_spec(e)[0] == "python"]
    assert python and all(
        requires_python.contains(v) for v in ("3.10", "3.11", "3.12") if python[0].contains(v)
    ), f"environment.yml's python {python} must stay within requires-python {requires_python}"
    pip_section = [e for e in environment["dependencies"] if isinstance(e, dict)]
    assert any(
        re.match(r"-e\s+\.(\s|$)", line) for e in pip_section for line in e.get("pip", [])
    ), "environment.yml must install course_utils from the checkout (pip: -e .)"


# ---------------------------------------------------------------------------------------------
# Binder's post-build step
# ---------------------------------------------------------------------------------------------


def test_post_build_installs_the_course_and_hides_instructor_tools():
    post_build = ROOT / "binder" / "postBuild"
    hide = ROOT / "binder" / "hide-instructor-tools"
    for script in (post_build, hide):
        assert os.access(script, os.X_OK), f"{script.relative_to(ROOT)} must be executable"
        text = script.read_text(encoding="utf-8")
        assert text.startswith("#!/bin/bash\n") and "set -euo pipefail" in text, script
    text = post_build.read_text(encoding="utf-8")
    assert re.search(r"pip install .*-e \.", text), "postBuild must pip install -e ."
    assert re.search(r"^binder/hide-instructor-tools sys_prefix$", text, re.M)

    hide_text = hide.read_text(encoding="utf-8")
    for name in HIDDEN_LAB_PLUGINS + HIDDEN_SERVER_EXTENSIONS:
        assert name in hide_text, f"hide-instructor-tools must disable {name}"
    for name in KEPT_LAB_PLUGINS + KEPT_SERVER_EXTENSIONS:
        assert f"disable {name}" not in hide_text and f" {name} " not in hide_text, name


def test_binder_start_sets_a_passive_openmp_policy_unless_one_is_set():
    start = ROOT / "binder" / "start"
    assert os.access(start, os.X_OK), "binder/start must be executable"
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for env, expected in ((base, "PASSIVE"), ({**base, "OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE")):
        result = subprocess.run(
            [str(start), sys.executable, "-c", "import os; print(os.environ['OMP_WAIT_POLICY'])"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0 and result.stdout.strip() == expected, result


def test_the_names_hidden_are_the_ones_nbgrader_registers():
    """An nbgrader upgrade that renames its plugins must not silently un-hide them."""
    import importlib

    import nbgrader
    from jupyter_core.paths import jupyter_config_path

    registered: dict = {}
    for folder in jupyter_config_path():
        path = Path(folder) / "jupyter_server_config.d" / "nbgrader.json"
        if path.exists():
            registered.update(json.loads(path.read_text())["ServerApp"]["jpserver_extensions"])
    for name in HIDDEN_SERVER_EXTENSIONS + KEPT_SERVER_EXTENSIONS:
        assert registered.get(name) is True, f"nbgrader does not enable {name}: {registered}"
        module = importlib.import_module(name)
        assert hasattr(module, "_load_jupyter_server_extension") or hasattr(
            module, "load_jupyter_server_extension"
        ), name
    assert nbgrader.__version__ == "0.9.6", "check the plugin names when nbgrader changes"
    labextension = Path(nbgrader.__file__).parent / "labextension" / "static"
    if not labextension.is_dir():  # an editable or unusual install: look where Jupyter does
        labextension = Path(sys.prefix) / "share/jupyter/labextensions/@jupyter/nbgrader/static"
    code = "\n".join(p.read_text(errors="replace") for p in labextension.glob("*.js"))
    for plugin in HIDDEN_LAB_PLUGINS + KEPT_LAB_PLUGINS:
        assert plugin in code, f"nbgrader's lab extension registers no plugin {plugin}"


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture(scope="module")
def learner_config(tmp_path_factory) -> Path:
    """A JUPYTER_CONFIG_DIR set up by binder/hide-instructor-tools, as postBuild does.

    On Binder the script acts on the sys-prefix level, where nbgrader enables its server
    extensions. Here it acts on a temporary user level: nbgrader's own configuration file is
    copied there first, so that the level it changes is one where nbgrader is enabled, as on
    Binder (`jupyter server extension disable` only sees the level it writes to).
    ``LEARNER_ENV`` makes that temporary level rank first in every kind of environment (in a
    venv or a conda environment, the environment's level would otherwise outrank it and
    undo the disable), and the script, left to choose (``auto``), must then write there.
    """
    config_dir = tmp_path_factory.mktemp("learner-jupyter-config")
    from jupyter_core.paths import jupyter_config_path

    sources = [
        Path(p) / "jupyter_server_config.d" / "nbgrader.json"
        for p in jupyter_config_path()
        if (Path(p) / "jupyter_server_config.d" / "nbgrader.json").exists()
    ]
    assert sources, "nbgrader's server configuration (jupyter_server_config.d/nbgrader.json)"
    (config_dir / "jupyter_server_config.d").mkdir()
    shutil.copy(sources[0], config_dir / "jupyter_server_config.d" / "nbgrader.json")

    result = _hide_instructor_tools(config_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "writing at the user level" in result.stdout, result.stdout
    return config_dir


# The temporary user level outranks the environment's own, wherever the suite runs.
LEARNER_ENV = {"JUPYTER_PREFER_ENV_PATH": "0"}


def _hide_instructor_tools(config_dir: Path, *args: str, **env: str):
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config_dir), **LEARNER_ENV, **env}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run(
        ["bash", str(ROOT / "binder" / "hide-instructor-tools"), *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_hide_instructor_tools_writes_at_the_level_that_wins(tmp_path):
    """In a venv or a named conda environment the environment's level outranks the user's
    (jupyter_core's prefer_environment_over_user), elsewhere the user's does: the script's
    ``auto`` level must be the one that ranks first here, whichever environment this is."""
    from jupyter_core.paths import jupyter_config_dir, jupyter_config_path

    def which(**env) -> str:
        result = _hide_instructor_tools(tmp_path, "--which", **env)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert which(JUPYTER_PREFER_ENV_PATH="1") == "sys_prefix"
    assert which(JUPYTER_PREFER_ENV_PATH="0") == "user"
    # With no preference set, as learners run it: the level whose folder ranks first.
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_PREFER_ENV_PATH"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    here = subprocess.run(
        ["bash", str(ROOT / "binder" / "hide-instructor-tools"), "--which"],
        env=env, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    first = Path(jupyter_config_path()[0]).resolve()
    expected = "user" if first == Path(jupyter_config_dir()).resolve() else "sys_prefix"
    if not {"JUPYTER_PREFER_ENV_PATH", "JUPYTER_CONFIG_PATH"} & set(os.environ):
        assert here == expected, (here, jupyter_config_path())
    assert _hide_instructor_tools(tmp_path, "bogus").returncode == 2


@pytest.mark.slow
def test_jupyter_reports_instructor_tools_disabled(learner_config):
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(learner_config), **LEARNER_ENV}
    run = dict(env=env, capture_output=True, text=True, timeout=300)
    jupyter = [sys.executable, "-m", "jupyter"]

    lab = subprocess.run([*jupyter, "labextension", "list"], **run)
    listing = _strip_ansi(lab.stdout + lab.stderr)
    disabled = (
        listing.split("Disabled extensions:", 1)[-1] if "Disabled extensions:" in listing else ""
    )
    for plugin in HIDDEN_LAB_PLUGINS:
        assert re.search(rf"^\s+{re.escape(plugin)}\b", disabled, re.M), listing
    for plugin in KEPT_LAB_PLUGINS:
        assert plugin not in disabled, listing

    server = subprocess.run([*jupyter, "server", "extension", "list"], **run)
    listing = _strip_ansi(server.stdout + server.stderr)
    ours = listing.split(f"Config dir: {learner_config}", 1)
    assert len(ours) == 2, listing
    block = ours[1].split("Config dir:", 1)[0]
    for name in HIDDEN_SERVER_EXTENSIONS:
        assert re.search(rf"^\s+{re.escape(name)} disabled", block, re.M), block


@pytest.mark.slow
def test_jupyter_lab_with_binder_settings_serves_the_course(learner_config, jupyter_lab, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(ROOT / "notebooks", course / "notebooks")
    server = jupyter_lab(course, config_dir=learner_config, env=LEARNER_ENV)
    try:
        for lab in LABS:
            status, body = server.request(f"/api/contents/notebooks/{lab}/{lab}.ipynb")
            assert status == 200, f"{lab}: {status} {body[:300]!r}"
            assert json.loads(body)["type"] == "notebook"
        status, body = server.request("/lab")
        assert status == 200, status
        page = re.search(rb'<script id="jupyter-config-data"[^>]*>(.*?)</script>', body, re.S)
        assert page, "no page config in /lab"
        page_config = json.loads(page.group(1))
        for plugin in HIDDEN_LAB_PLUGINS:
            assert plugin in page_config["disabledExtensions"], page_config["disabledExtensions"]
        for plugin in KEPT_LAB_PLUGINS:
            assert plugin not in page_config["disabledExtensions"]
        # The formgrader and course list are not served; the learner's side of nbgrader is.
        assert server.request("/formgrader")[0] == 404
        assert server.request("/formgraders")[0] == 404
        assert server.request("/nbgrader_version?version=0.9.6")[0] == 200
        log = server.log()
        for name in KEPT_SERVER_EXTENSIONS:
            assert f"{name} | extension was successfully loaded" in log, log[-3000:]
        for name in HIDDEN_SERVER_EXTENSIONS:
            assert f"{name} | extension was successfully loaded" not in log
    finally:
        server.stop()
    assert server.process.poll() is not None


# ---------------------------------------------------------------------------------------------
# Colab: setup cell, badges, repository
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lab", "kind"), NOTEBOOKS)
def test_first_code_cell_is_the_setup_cell(lab, kind):
    nb = read_notebook(lab, kind)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and code[0].source == authoring.setup_cell_source(), (
        f"{kind} notebook of {lab}: the first code cell is not authoring.setup_cell_source(); "
        "rebuild with `python -m course_utils build` and `release`"
    )


@pytest.mark.parametrize(("lab", "kind"), NOTEBOOKS)
def test_first_markdown_cell_has_launch_badges_for_the_notebook(lab, kind):
    """Badges point at the student notebook's path: for the student notebook that is its
    own path; the solution notebook (the nbgrader source) links to what learners open."""
    nb = read_notebook(lab, kind)
    markdown = [cell for cell in nb.cells if cell.cell_type == "markdown"]
    assert markdown and nb.cells[0] is markdown[0], f"{lab} {kind}: must start with markdown"
    path = f"notebooks/{lab}/{lab}.ipynb"
    assert path == notebook_path(lab, "student").relative_to(ROOT).as_posix()
    title = markdown[0].source
    assert config.colab_badge(path) in title, f"{lab} {kind}: no Colab badge for {path}"
    assert config.binder_badge(path) in title, f"{lab} {kind}: no Binder badge for {path}"
    assert (
        f"colab.research.google.com/github/{config.REPOSITORY}/blob/{config.BRANCH}/{path}" in title
    )
    assert (
        f"mybinder.org/v2/gh/{config.REPOSITORY}/{config.BRANCH}?urlpath=lab/tree/{path}" in title
    )


_HARNESS = textwrap.dedent(
    """
    import importlib.abc, json, os, subprocess, sys, types

    source, colab = sys.argv[1], sys.argv[2] == "colab"
    calls, enabled = [], []

    def record(*args, **kwargs):
        calls.append([list(a) if isinstance(a, (list, tuple)) else a for a in args])
        command = list(args[0]) if args and isinstance(args[0], (list, tuple)) else []
        if os.environ.get("FAIL_CALL") and os.environ["FAIL_CALL"] in command:
            raise subprocess.CalledProcessError(128, command)
        return subprocess.CompletedProcess(args[0] if args else None, 0)

    for name in ("run", "Popen", "call", "check_call", "check_output"):
        setattr(subprocess, name, record)
    os.system = record

    class Guard(importlib.abc.MetaPathFinder):  # no pip, no google.* imported for real
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("google", "pip"):
                raise ImportError("the setup cell imported " + name)
            return None

    sys.meta_path.insert(0, Guard())
    if colab:  # what Colab has: google.colab.output.enable_custom_widget_manager()
        google, colab_module = types.ModuleType("google"), types.ModuleType("google.colab")
        output = types.ModuleType("google.colab.output")
        output.enable_custom_widget_manager = lambda: enabled.append(True)
        google.colab, colab_module.output = colab_module, output
        sys.modules.update({"google": google, "google.colab": colab_module,
                            "google.colab.output": output})
    exit_code = None
    try:
        exec(compile(source, "<setup cell>", "exec"), {"__name__": "__main__"})
    except SystemExit as stop:
        exit_code = stop.code
    imported = sorted(m for m in sys.modules if m.split(".")[0] in ("google", "pip"))
    print(json.dumps({"calls": calls, "enabled": len(enabled), "modules": imported,
                      "omp": os.environ.get("OMP_WAIT_POLICY"), "exit": exit_code,
                      "root": os.environ.get("COURSE_ROOT")}))
    """
)


def _run_setup_cell(where: str, python: str = sys.executable, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "COURSE_ROOT")}
    result = subprocess.run(
        [python, "-I", "-c", _HARNESS, authoring.setup_cell_source(), where],
        capture_output=True, text=True, timeout=60, cwd=ROOT / "binder", env={**base, **env},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    return {**json.loads(lines[-1]), "printed": "\n".join(lines[:-1]), "stderr": result.stderr}


def test_setup_cell_only_sets_a_passive_openmp_policy_outside_colab():
    outcome = _run_setup_cell("local")
    expected = {"calls": [], "enabled": 0, "modules": [], "printed": "", "stderr": ""}
    assert outcome == {**expected, "omp": "PASSIVE", "root": None, "exit": None}, outcome
    # A policy the user chose stays.
    assert _run_setup_cell("local", OMP_WAIT_POLICY="ACTIVE")["omp"] == "ACTIVE"


def test_setup_cell_on_colab_fetches_the_course_and_shows_how_to_grade():
    """On Colab: a shallow clone of the course (grade needs solutions/ and nbgrader's settings),
    the package installed from it, COURSE_ROOT pointing there, widgets enabled, and the line
    that grades the notebook printed (course_utils.tooling.colab)."""
    from course_utils.tooling import colab

    outcome = _run_setup_cell("colab")
    course = config.COLAB_COURSE_DIR
    clone, install = (call[0] for call in outcome["calls"])
    assert clone[:2] == ["git", "clone"] and clone[-2:] == [config.clone_url(), course], clone
    assert "--depth" in clone and clone[clone.index("--depth") + 1] == "1", clone
    # pinned to the release the notebook comes from, not the moving branch
    assert clone[clone.index("--branch") + 1] == config.RELEASE_TAG == f"v{config.VERSION}", clone
    assert install[1:] == ["-m", "pip", "install", "-q", course], install
    assert len(outcome["calls"]) == 2, outcome
    assert config.clone_url() == f"https://github.com/{config.REPOSITORY}.git"
    assert outcome["root"] == course and outcome["omp"] == "PASSIVE", outcome
    assert outcome["enabled"] == 1, "the setup cell must enable Colab's custom widget manager"
    assert colab.GRADE_LINE in outcome["printed"], outcome["printed"]


@pytest.mark.parametrize("failing", ["git", "pip"])
def test_setup_cell_on_colab_says_what_to_do_when_fetching_fails(failing):
    """A failed clone or install: one line that says what to do, no traceback, and the
    half-made folder removed so that running the cell again retries."""
    outcome = _run_setup_cell("colab", FAIL_CALL=failing if failing == "git" else "install")
    assert outcome["exit"] == 1, outcome
    (line,) = outcome["stderr"].strip().splitlines()
    assert line.startswith(f"Could not fetch the course {config.RELEASE_TAG} ("), line
    assert "run this cell again" in line and config.issues_url() in line, line
    assert "Traceback" not in outcome["stderr"] and outcome["root"] is None, outcome
    assert outcome["enabled"] == 0 and "grade" not in outcome["printed"], outcome


def test_setup_cell_on_colab_takes_the_newest_course_when_its_release_is_not_published():
    """A release tag not (yet) on GitHub: the clone of the branch instead, with one line
    saying so, and the course installed from it; the notebook still works."""
    outcome = _run_setup_cell("colab", FAIL_CALL=config.RELEASE_TAG)
    tagged, branch, install = (call[0] for call in outcome["calls"])
    assert tagged[tagged.index("--branch") + 1] == config.RELEASE_TAG, tagged
    assert branch[branch.index("--branch") + 1] == config.BRANCH, branch
    assert branch[-2:] == [config.clone_url(), config.COLAB_COURSE_DIR], branch
    assert install[1:] == ["-m", "pip", "install", "-q", config.COLAB_COURSE_DIR], install
    (line,) = outcome["stderr"].strip().splitlines()
    assert line.startswith(f"The course's {config.RELEASE_TAG} is not on GitHub yet"), line
    assert outcome["exit"] is None and outcome["root"] == config.COLAB_COURSE_DIR, outcome


# Google Colab's runtime as Colab publishes it, in github.com/googlecolab/backend-info:
# os-info-gpu.txt and pip-freeze.gpu.txt at commit a724079 (2026-08-19, "Upgrade to Python
# 3.13"); its CPU runtime has the same versions, with torch 2.11.0+cpu. Colab also keeps a
# few past runtimes (that repository's README: 2026.07 had Python 3.12.13, torch 2.11.0).
# Update these from there when Colab moves.
COLAB = {
    "python": "3.13.15",
    "torch": "2.11.0",
    "numpy": "2.1.3",
    "matplotlib": "3.10.0",
    "tqdm": "4.67.3",
    "ipywidgets": "7.7.1",
    "transformers": "5.15.0",
    "jupytext": "1.19.5",
    "notebook": "6.5.7",
    "ipykernel": "6.17.1",
    "jupyter-client": "7.4.9",
}
# What the setup cell's `pip install <course>` upgrades on Colab: ipywidgets 8 (the cell turns
# on Colab's custom widget manager for it). Everything else, torch above all (gigabytes),
# must be used as Colab ships it.
COLAB_UPGRADED = {"ipywidgets"}


def test_colab_runtime_installs_the_course_without_replacing_its_packages():
    from packaging.requirements import Requirement

    requires_python = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert requires_python.contains(COLAB["python"]), (
        f"pyproject's requires-python {requires_python} shuts out Colab's Python {COLAB['python']}"
    )
    for line in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        colab = COLAB[name]
        if name in COLAB_UPGRADED:
            assert not requirement.specifier.contains(colab), f"{name}: no longer upgraded"
        else:
            assert requirement.specifier.contains(colab), (
                f"`pip install` of the course would replace Colab's {name} {colab} ({line})"
            )
    extras = [Requirement(x) for x in PYPROJECT["project"]["optional-dependencies"]["course"]]
    transformers = next(r for r in extras if r.name == "transformers")
    assert transformers.specifier.contains(COLAB["transformers"]), "labs 04-06 on Colab"


def _python(version: str) -> str | None:
    """An interpreter of ``version`` (3.13): pyenv's, or on PATH; None when there is none."""
    candidates = sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python"))
    candidates += [x for x in [shutil.which(f"python{version}")] if x]
    for candidate in candidates:
        check = f"import sys; assert sys.version_info[:2] == {tuple(map(int, version.split('.')))}"
        if subprocess.run([candidate, "-c", check], capture_output=True).returncode == 0:
            return candidate
    return None


def test_setup_cell_runs_under_colabs_python():
    """Colab runs a newer Python than the suite: the cell (standard library only) there."""
    version = ".".join(COLAB["python"].split(".")[:2])
    python = _python(version)
    if python is None:
        pytest.skip(f"no Python {version} here (Colab's)")
    outcome = _run_setup_cell("colab", python=python)
    clone = outcome["calls"][0][0]
    assert clone[clone.index("--branch") + 1] == config.RELEASE_TAG, outcome
    assert outcome["exit"] is None and outcome["enabled"] == 1, outcome
    failed = _run_setup_cell("colab", python=python, FAIL_CALL="git")
    assert failed["exit"] == 1 and "Could not fetch the course" in failed["stderr"], failed


def test_course_version_is_one_number():
    """The release tag Colab clones comes from config.VERSION; the package says the same."""
    import tomllib

    import course_utils

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == config.VERSION == course_utils.__version__
    assert config.RELEASE_TAG == f"v{config.VERSION}"


def test_colab_grading_leaves_out_its_own_cell_and_finds_the_lab():
    from course_utils.tooling import colab

    nb = read_notebook(LABS[0], "student")
    added = nbformat.v4.new_code_cell(colab.GRADE_LINE)
    mine = json.loads(nbformat.writes(nb))
    mine["cells"].append(json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[added])))[
        "cells"][0])  # fmt: skip
    kept = colab.without_grade_cells(mine)
    assert len(kept["cells"]) == len(nb.cells) and colab.lab_of(kept) == LABS[0]
    with pytest.raises(RuntimeError, match="which course lab"):
        colab.lab_of({"metadata": {}})
    nbgrader_pin = [r for r in PYPROJECT["project"]["optional-dependencies"]["course"]
                    if r.startswith("nbgrader")]  # fmt: skip
    assert nbgrader_pin == [colab.NBGRADER], "colab.NBGRADER must match pyproject.toml"


# GitHub repositories named in a URL: (owner, name).
_REPOSITORY_PATTERNS = [
    r"colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)",
    r"mybinder\.org/v2/gh/([\w.-]+)/([\w.-]+)",
    r"raw\.githubusercontent\.com/([\w.-]+)/([\w.-]+)",
    r"(?<![\w.])github\.com[/:]([\w.-]+)/([\w.-]+)",
]
# Repositories the course's own files may cite (credits, data sources). Launch links (Colab,
# Binder, pip install from git) must always name config.REPOSITORY.
CITED_REPOSITORIES = {"karpathy/char-rnn"}


def repositories(text: str) -> list[tuple[str, str]]:
    """(repository, the URL's start) for every GitHub repository named in ``text``."""
    found = []
    for pattern in _REPOSITORY_PATTERNS:
        for match in re.finditer(pattern, text):
            owner, name = match.group(1), match.group(2).removesuffix(".git")
            found.append((f"{owner}/{name}", text[max(0, match.start() - 20) : match.end()]))
    return found


def _is_launch_link(context: str) -> bool:
    return bool(re.search(r"colab\.research|mybinder\.org|git\+https?://", context))


def test_repository_scanner_finds_what_it_should():
    text = (
        "[x](https://colab.research.google.com/github/a/b/blob/main/n.ipynb) "
        "https://mybinder.org/v2/gh/c/d/main git+https://github.com/e/f.git@main "
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/x.txt"
    )
    assert [r for r, _ in repositories(text)] == ["a/b", "c/d", "karpathy/char-rnn", "e/f"]


def test_no_file_names_another_repository():
    owner, name = config.REPOSITORY.split("/")
    strict = [ROOT / "README.md", ROOT / "environment.yml", *sorted((ROOT / "binder").iterdir())]
    lenient = [ROOT / "CONTRIBUTING.md"] + sorted(
        path
        for folder in ("notebooks", "solutions")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".ipynb", ".py", ".md") and ".ipynb_checkpoints" not in path.parts
    )
    problems = []
    for path in strict + lenient:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for repository, context in repositories(text):
            if repository == config.REPOSITORY:
                continue
            looks_like_ours = repository.split("/")[0] == owner or repository.split("/")[1] == name
            if (
                _is_launch_link(context)
                or looks_like_ours
                or (path in strict and repository not in CITED_REPOSITORIES)
            ):
                problems.append(f"{path.relative_to(ROOT)}: {repository} in {context!r}")
    urls = PYPROJECT["project"].get("urls", {})
    for key, url in urls.items():
        if any(r != config.REPOSITORY for r, _ in repositories(url)):
            problems.append(f"pyproject.toml [project.urls] {key} = {url!r}")
    assert any(config.REPOSITORY in [r for r, _ in repositories(url)] for url in urls.values()), (
        f"pyproject.toml: [project.urls] must link to {config.github_url()}"
    )
    assert not problems, (
        f"files that name another repository than {config.REPOSITORY}:\n" + "\n".join(problems)
    )


# ---------------------------------------------------------------------------------------------
# Colab: widgets through ipywidgets 8's protocol, no JupyterLab-only outputs
# ---------------------------------------------------------------------------------------------

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# What Colab (and classic Jupyter, VS Code) render: anything else needs a JupyterLab renderer.
PORTABLE_MIME_TYPES = {
    "text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg",
    "image/svg+xml", "image/gif", "application/json", "application/javascript", WIDGET_VIEW,
}  # fmt: skip
# ipywidgets 8 model modules and their protocol versions (Colab loads these for version 2).
CORE_WIDGET_MODULES = {
    "@jupyter-widgets/base": "2.0.0",
    "@jupyter-widgets/controls": "2.0.0",
    "@jupyter-widgets/output": "1.0.0",
}


@pytest.mark.slow
@pytest.mark.parametrize("lab", LABS)
def test_widgets_use_the_ipywidgets8_protocol_colab_renders(lab):
    # The solution notebook run in smoke with its widget state kept, shared with
    # test_learner_experience (which checks that this run has no errors).
    nb = helpers.executed_in_smoke()[(lab, "solution")]
    views, problems = [], []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output["output_type"] not in ("display_data", "execute_result"):
                continue
            data = output.get("data", {})
            odd = sorted(set(data) - PORTABLE_MIME_TYPES)
            if odd:
                problems.append(f"cell {index + 1}: output needs a JupyterLab renderer: {odd}")
            if "text/plain" not in data and not (set(data) & {"text/html", "image/png"}):
                problems.append(
                    f"cell {index + 1}: output with no portable fallback: {sorted(data)}"
                )
            if WIDGET_VIEW in data:
                view = data[WIDGET_VIEW]
                views.append(view["model_id"])
                if view.get("version_major") != 2:
                    problems.append(f"cell {index + 1}: widget view version {view} is not 2.x")
    assert views, f"{lab}: no widget displayed (every lab promises one)"

    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {})
    assert state.get("version_major") == 2, f"{lab}: widget state is not ipywidgets 8's"
    models = state.get("state", {})
    for model_id in views:
        if model_id not in models:
            problems.append(f"widget {model_id} is displayed but its state was not saved")
    for model in models.values():
        module = model["model_module"]
        if CORE_WIDGET_MODULES.get(module) != model["model_module_version"]:
            problems.append(
                f"model {model['model_name']} from {module} {model['model_module_version']}: "
                "not an ipywidgets 8 core widget (Colab renders those without extensions)"
            )
    assert not problems, f"{lab}:\n" + "\n".join(problems)


def test_colab_grading_tools_install_failure_says_what_to_do(tmp_path, monkeypatch):
    from course_utils.tooling import colab

    monkeypatch.setitem(sys.modules, "nbgrader", None)  # as on Colab: no nbgrader
    monkeypatch.setattr(colab, "GRADER_ENV", tmp_path / "grader")

    def offline(command, **kwargs):
        (tmp_path / "grader").mkdir(exist_ok=True)  # a half-made environment
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(colab.subprocess, "run", offline)
    with pytest.raises(RuntimeError, match="Could not install the grading tools") as caught:
        colab.grader_python()
    assert config.issues_url() in str(caught.value) and colab.NBGRADER in str(caught.value)
    assert not (tmp_path / "grader").exists(), "a retry must start afresh"
