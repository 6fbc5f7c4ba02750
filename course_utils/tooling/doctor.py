"""``python -m course_utils doctor``: is this machine ready for the course?

Prints Python and library versions, the device PyTorch will use, how many threads it runs
(and why) with OpenMP's wait policy, whether widgets will render, and for anything missing,
the command that fixes it.
"""

from __future__ import annotations

import importlib
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

# (import name, pip name, minimum version, needed for)
REQUIREMENTS = [
    ("torch", "torch", "2.2", "all labs"),
    ("numpy", "numpy", "1.24", "all labs"),
    ("matplotlib", "matplotlib", "3.7", "plots"),
    ("tqdm", "tqdm", "4.66", "progress bars"),
    ("ipywidgets", "ipywidgets", "8.0", "interactive widgets"),
    ("jupyterlab", "jupyterlab", "4.0", "running the notebooks locally"),
    ("nbgrader", "nbgrader", "0.9", "grading your own work"),
]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


# Tools a notebook never imports: their installed version is enough, and importing them
# (tens of seconds for jupyterlab on a busy machine) would slow every grading kernel down.
_TOOLS = ("jupyterlab", "nbgrader")


def _version(module: str, pip_name: str) -> str:
    if module in _TOOLS:
        from importlib import metadata, util

        if util.find_spec(module) is None:
            raise ImportError(module)
        return metadata.version(pip_name)
    return getattr(importlib.import_module(module), "__version__", "?")


def _in_colab() -> bool:
    return "google.colab" in sys.modules


def checks() -> list[Check]:
    """Run every check and return the results (no printing)."""
    results = [
        Check(
            "python",
            sys.version_info >= (3, 10),
            platform.python_version(),
            "install Python 3.10 or newer",
        )
    ]
    for module, pip_name, minimum, purpose in REQUIREMENTS:
        try:
            version = _version(module, pip_name)
        except Exception as error:  # noqa: BLE001 - a broken install is as bad as a missing one
            optional = module in ("jupyterlab", "nbgrader") and _in_colab()
            results.append(
                Check(
                    module,
                    optional,
                    f"not importable ({type(error).__name__})"
                    + (" - not needed on Colab" if optional else ""),
                    f"pip install '{pip_name}>={minimum}'  # for {purpose}",
                )
            )
            continue
        ok = _version_tuple(version) >= _version_tuple(minimum)
        results.append(Check(module, ok, version, f"pip install -U '{pip_name}>={minimum}'"))
    results.append(_device_check())
    results.append(_threads_check())
    results.append(_widget_check())
    results.append(_isolation_check())
    results.append(_terminal_check())
    return results


def _terminal_check(environ: dict | None = None) -> Check:
    """Information: which ``python`` a terminal finds after your shell's start-up file (where
    ``pyenv init`` or ``conda init`` may put another Python first), and what to run if it is
    not this one. Never a failure: ``start``'s own terminals put this Python first."""
    import os
    import shutil
    import subprocess

    env = dict(os.environ if environ is None else environ)
    shell = env.get("SHELL") or ""
    if Path(shell).name not in ("bash", "zsh") or not shutil.which(shell):
        return Check("terminal", True, "no bash or zsh start-up file to check")
    try:
        done = subprocess.run(
            [shell, "-ic", "command -v python"],
            capture_output=True, text=True, timeout=15, env=env, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        found = (done.stdout.strip().splitlines() or [""])[-1]
    except (OSError, subprocess.SubprocessError) as error:
        return Check("terminal", True, f"could not ask {shell} ({type(error).__name__})")
    here = Path(sys.executable).parent / "python"
    if found and os.path.abspath(found) == os.path.abspath(here):
        return Check("terminal", True, f"a new terminal's python is this one ({here})")
    name = "~/.zshrc" if Path(shell).name == "zsh" else "~/.bashrc"
    return Check(
        "terminal",
        True,
        f"a new terminal's python is {found or 'none'}, not this one ({here}): {name} puts "
        "another first. Terminals opened in `python -m course_utils start` use this one; "
        f"elsewhere run {here} -m course_utils ... (or the `course` command)",
    )


def _isolation_check() -> Check:
    """Informational: how grading kernels are isolated here (never a failure)."""
    try:
        from .sandbox import describe

        return Check("grading", True, describe())
    except Exception as error:  # noqa: BLE001
        return Check("grading", True, f"isolation unknown ({type(error).__name__})")


def _device_check() -> Check:
    try:
        from ..profiles import current_profile, pick_device

        device = pick_device()
        profile = current_profile()
    except Exception as error:  # noqa: BLE001
        return Check("device", False, f"could not choose a device: {error}")
    extra = ""
    if device.type == "cuda":
        import torch

        extra = f" ({torch.cuda.get_device_name(device)})"
    return Check("device", True, f"{device.type}{extra}, profile {profile!r}")


def _threads_check() -> Check:
    """PyTorch's thread count, where it comes from, and the OpenMP wait policy (information)."""
    import os

    try:
        from ..profiles import THREADS_VAR, affinity_cpus, apply_threads, cgroup_cpu_limit

        threads = apply_threads()
    except Exception as error:  # noqa: BLE001
        return Check("threads", False, f"could not choose: {error}", "unset COURSE_THREADS")
    limit = cgroup_cpu_limit()
    quota = "no CPU quota" if limit is None else f"CPU quota {limit:g}"
    if os.environ.get(THREADS_VAR, "").strip():
        why = f"{THREADS_VAR}={os.environ[THREADS_VAR].strip()}"
    elif os.environ.get("OMP_NUM_THREADS", "").strip():
        why = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS'].strip()}"
    else:
        why = f"{affinity_cpus()} CPUs allowed, {quota}"
    policy = os.environ.get("OMP_WAIT_POLICY", "").strip()
    wait = (
        f"OMP_WAIT_POLICY={policy}"
        if policy
        else "OMP_WAIT_POLICY unset (OpenMP threads spin while waiting: slow on a busy machine)"
    )
    return Check("threads", True, f"{threads} for PyTorch ({why}); {wait}")


def _widget_check() -> Check:
    try:
        import ipywidgets
    except ImportError:
        return Check("widgets", False, "ipywidgets missing", "pip install 'ipywidgets>=8'")
    except Exception as error:  # noqa: BLE001 - a broken install, not a missing one
        return Check(
            "widgets",
            False,
            f"ipywidgets is broken ({type(error).__name__}: {str(error)[:80]})",
            "pip install --force-reinstall 'ipywidgets>=8'",
        )
    major = _version_tuple(ipywidgets.__version__)[:1]
    if major < (8,):
        return Check(
            "widgets",
            False,
            f"ipywidgets {ipywidgets.__version__} is too old",
            "pip install -U 'ipywidgets>=8'",
        )
    if _in_colab():
        return Check("widgets", True, "Colab: the setup cell enables the widget manager")
    try:
        import jupyterlab_widgets  # noqa: F401 - the front-end half that JupyterLab needs
    except Exception:  # noqa: BLE001 - missing or broken: widgets would not render either way
        return Check(
            "widgets",
            False,
            "jupyterlab_widgets is missing: widgets would not render",
            "pip install -U 'ipywidgets>=8'  # brings jupyterlab_widgets",
        )
    return Check("widgets", True, "ipywidgets 8 with its JupyterLab extension")


def report(file=None) -> bool:
    """Print the checks as a table; return True when everything needed is present."""
    file = file or sys.stdout
    results = checks()
    width = max(len(c.name) for c in results)
    for check in results:
        print(f"{'✓' if check.ok else '✗'} {check.name:<{width}}  {check.detail}", file=file)
        if not check.ok and check.fix:
            mark = "MISSING" if "not importable" in check.detail else "FIX"
            print(f"  {'':<{width}}  {mark}: {check.fix}", file=file)
    ready = all(c.ok for c in results)
    print(
        "Ready for the course." if ready else "Fix the lines marked ✗, then run this again.",
        file=file,
    )
    return ready
