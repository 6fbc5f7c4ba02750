"""Profiles, devices and seeds: the same notebook runs in seconds when graded, in minutes on a
laptop, and bigger on a GPU.

``COURSE_PROFILE`` picks the profile:

- ``smoke``: tiny settings, used when autograding and in the test suite (each lab < 60 s);
- ``cpu``: the default on a laptop (each lab < 4 min on 2 cores);
- ``gpu``: chosen automatically when CUDA is available.

A lab declares its settings once for every profile and reads the current one::

    cfg = course_utils.settings(
        smoke=dict(steps=20, d_model=32),
        cpu=dict(steps=600, d_model=64),
        gpu=dict(steps=3000, d_model=256),
    )
    cfg.steps

Both ``settings()`` and ``seed_everything()`` also set PyTorch's thread count to the CPUs
this process may really use (:func:`usable_cpus`: its CPU affinity and its container's CPU
quota, which ``os.cpu_count()`` does not see), or to ``$COURSE_THREADS`` when set. On a busy
classroom server, more threads than CPUs make every step slower, not faster.

``COURSE_MAX_STEPS`` (a whole number, unset for learners) caps every training loop, to check
a profile's sizes without its run time: ``settings()`` caps each setting whose name ends in
``steps`` (an int, or the i-th number of a list or tuple at ``(i + 1) * N``, so that a sweep
keeps distinct, rising lengths) and :func:`course_utils.training.train` caps its ``steps``.
Evaluation loops shrink with them: a setting ending in ``batches`` is capped at ``N`` too, one
ending in ``repeats`` (a timing's) at 1, and one ending in ``seeds`` keeps its first two seeds
(a standard error needs two). Models, data and contexts keep their sizes: those are what the
check is for.
The suite runs every lab's ``gpu`` profile on the CPU this way (its models and data at their
real sizes, two optimisation steps per loop); ``benchmarks/gpu_check.py --dry`` does the same.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

PROFILES = ("smoke", "cpu", "gpu")
ENV_VAR = "COURSE_PROFILE"
THREADS_VAR = "COURSE_THREADS"
MAX_STEPS_VAR = "COURSE_MAX_STEPS"
CGROUP = Path("/sys/fs/cgroup")


def current_profile() -> str:
    """The active profile: ``$COURSE_PROFILE`` if set, else ``gpu`` with CUDA, else ``cpu``."""
    chosen = os.environ.get(ENV_VAR, "").strip().lower()
    if chosen:
        if chosen not in PROFILES:
            raise ValueError(
                f"{ENV_VAR}={chosen!r} is not a profile; expected one of {', '.join(PROFILES)}"
            )
        return chosen
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def settings(**by_profile: dict[str, Any]) -> SimpleNamespace:
    """Return the settings of the current profile as attributes.

    Pass one dict per profile (``smoke=``, ``cpu=``, ``gpu=``). ``cpu`` is required; a
    missing ``gpu`` falls back to ``cpu`` and a missing ``smoke`` too.

    A profile may say ``threads=N``: PyTorch uses at most N threads in it (unless
    ``$COURSE_THREADS`` or ``$OMP_NUM_THREADS`` says otherwise). Models of a few thousand
    parameters lose to the thread pool's overhead: lab 07's ``cpu`` profile took 852 s with
    2 threads and 415 s with one on a quiet 2-core machine.
    """
    unknown = set(by_profile) - set(PROFILES)
    if unknown:
        raise ValueError(
            f"settings() got unknown profile(s) {sorted(unknown)}; expected {', '.join(PROFILES)}"
        )
    if "cpu" not in by_profile:
        raise ValueError("settings() needs at least cpu=dict(...), the laptop settings")
    profile = current_profile()
    chosen = by_profile.get(profile, by_profile["cpu"])
    cap = max_steps()
    if cap is not None:
        capped = {key: cap_steps(key, value, cap) for key, value in chosen.items()}
        changed = sorted(key for key in chosen if capped[key] != chosen[key])
        if changed:
            print(f"({MAX_STEPS_VAR}={cap}: {', '.join(changed)} capped; a check, not a real run)")
        chosen = capped
    chosen = dict(chosen)
    limit = chosen.pop("threads", None)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"settings(): threads={limit!r}; expected a whole number >= 1")
    _threads_limit[:] = [] if limit is None else [limit]  # seed_everything() keeps it
    apply_threads()
    return SimpleNamespace(profile=profile, **chosen)


def max_steps() -> int | None:
    """``$COURSE_MAX_STEPS`` as a number (None when unset): the cap on every training loop."""
    configured = os.environ.get(MAX_STEPS_VAR, "").strip()
    if not configured:
        return None
    try:
        value = int(configured)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_STEPS_VAR}={configured!r}: expected a whole number >= 1")
    return value


def cap_steps(key: str, value: Any, cap: int) -> Any:
    """``value`` capped for a check run (see the module's doc) when ``key`` names a loop:
    a number of steps (``...steps``) at ``cap``, the i-th of a list or tuple of them at
    ``(i + 1) * cap``; a number of evaluation batches (``...batches``) at ``cap``; a timing's
    repeats (``...repeats``) at one; a list of seeds (``...seeds``) at its first two, which the
    statistics code still needs."""
    if isinstance(value, bool):
        return value
    if key.endswith("seeds") and isinstance(value, (list, tuple)):
        return value[:2]
    if key.endswith("batches") and isinstance(value, int):
        return min(value, cap)
    if key.endswith("repeats") and isinstance(value, int):
        return min(value, 1)
    if not key.endswith("steps"):
        return value
    if isinstance(value, int):
        return min(value, cap)
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        return type(value)(min(v, (i + 1) * cap) for i, v in enumerate(value))
    return value


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: Path = CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs (1.5 = one and a half), or None.

    cgroup v2 writes ``<quota> <period>`` (or ``max <period>``) in ``cpu.max``; cgroup v1
    writes ``cpu.cfs_quota_us`` (-1 when unlimited) and ``cpu.cfs_period_us``.
    """
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                quota, period = int(parts[0]), int(parts[1])
            except ValueError:
                return None
            return quota / period if quota > 0 and period > 0 else None
        return None
    for folder in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        quota, period = _read(root / folder / "cpu.cfs_quota_us"), None
        if quota is None:
            continue
        period = _read(root / folder / "cpu.cfs_period_us")
        try:
            q, p = int(quota), int(period or 0)
        except ValueError:
            return None
        return q / p if q > 0 and p > 0 else None
    return None


def affinity_cpus() -> int:
    """How many CPUs the operating system lets this process run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def usable_cpus(root: Path = CGROUP) -> int:
    """CPUs this process may really use: its affinity, capped by the cgroup quota (rounded up)."""
    cpus = affinity_cpus()
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit - 1e-9)))
    return max(1, cpus)


_torch_default: list[int] = []  # PyTorch's own choice (physical cores), before we change it
_threads_limit: list[int] = []  # the cap of the last settings() call's profile (threads=N)


def thread_count() -> int:
    """Threads for PyTorch: ``$COURSE_THREADS``; else ``$OMP_NUM_THREADS`` when set; else
    the usable CPUs (:func:`usable_cpus`), never more than PyTorch's own default (its count
    of physical cores) nor than the current profile's ``threads=N`` (see :func:`settings`)."""
    for var in (THREADS_VAR, "OMP_NUM_THREADS"):
        configured = os.environ.get(var, "").strip()
        if not configured:
            continue
        try:
            value = int(configured)
        except ValueError:
            value = 0
        if value < 1:
            if var == THREADS_VAR:
                raise ValueError(f"{THREADS_VAR}={configured!r}: expected a whole number >= 1")
            continue  # an odd OMP_NUM_THREADS ("4,2") is OpenMP's business
        return value
    import torch

    if not _torch_default:
        _torch_default.append(torch.get_num_threads())
    return max(1, min(usable_cpus(), _torch_default[0], *_threads_limit))


def apply_threads() -> int:
    """Set ``torch.set_num_threads(thread_count())`` (when it differs); return the count."""
    import torch

    wanted = thread_count()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def pick_device(prefer: str | None = None):
    """The best available ``torch.device``: CUDA, then Apple's MPS, then CPU.

    ``prefer`` ("cpu", "cuda" or "mps") forces a choice and fails clearly if it is absent.
    The ``smoke`` profile always uses the CPU, so grading is the same everywhere.
    """
    import torch

    if prefer is not None:
        prefer = prefer.lower()
        available = {
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": _mps_available(),
        }
        if prefer not in available:
            raise ValueError(f"unknown device {prefer!r}; expected 'cpu', 'cuda' or 'mps'")
        if not available[prefer]:
            raise RuntimeError(f"device {prefer!r} is not available on this machine")
        return torch.device(prefer)
    if os.environ.get(ENV_VAR, "").strip().lower() == "smoke":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated exactly.

    It also sets PyTorch's thread count (:func:`apply_threads`), as ``settings()`` does.
    """
    import numpy as np
    import torch

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    apply_threads()
