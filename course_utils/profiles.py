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
"""

from __future__ import annotations

import os
import random
from types import SimpleNamespace
from typing import Any

PROFILES = ("smoke", "cpu", "gpu")
ENV_VAR = "COURSE_PROFILE"


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
    return SimpleNamespace(profile=profile, **chosen)


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
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated exactly."""
    import numpy as np
    import torch

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
