"""The device each lab runs on, and the line it prints about it, on every kind of machine.

CUDA and Apple's MPS are pretended here: ``torch.cuda.is_available`` and
``torch.backends.mps.is_available`` are replaced, as lab 00's hidden tests do. Each lab's
set-up cells (its solution source, up to the cell that prints the profile) run in a fresh
Python with those replacements, and the test reads what they printed. Moving a module to the
pretended device is a no-op there (``nn.Module.to``), since nothing is computed on it before
that line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import config

ROOT = Path(__file__).resolve().parents[2]

# Runs in a fresh Python: argv = [cuda, mps, lab, ...]; prints {lab: what its set-up printed}.
_RUNNER = r'''
import contextlib, io, json, os, re, sys
from pathlib import Path
from unittest import mock

import torch

cuda, mps, labs = sys.argv[1] == "1", sys.argv[2] == "1", sys.argv[3:]
real_to = torch.nn.Module.to


def fake_to(self, *args, **kwargs):  # the pretended GPU holds nothing
    target = kwargs.get("device", args[0] if args else None)
    if str(target).split(":")[0] in ("cuda", "mps"):
        return self
    return real_to(self, *args, **kwargs)


def setup_cells(source):
    """The code cells of a percent script, up to the one that prints the profile."""
    cells, current = [], None
    for line in source.splitlines():
        if line.startswith("# %%"):
            if current is not None:
                cells.append("\n".join(current))
            current = None if "[markdown]" in line else []
        elif current is not None:
            current.append(line)
    if current is not None:
        cells.append("\n".join(current))
    for i, cell in enumerate(cells):
        if re.search(r"print\(.*profile", cell):
            return cells[: i + 1]
    raise SystemExit(f"no cell prints the profile")


printed = {}
with (
    mock.patch("torch.cuda.is_available", return_value=cuda),
    mock.patch("torch.backends.mps.is_available", return_value=mps),
    mock.patch("torch.cuda.get_device_name", return_value="Pretend GPU"),
    mock.patch("torch.nn.Module.to", fake_to),
):
    for lab in labs:
        folder = Path("solutions") / lab
        os.chdir(folder)
        out = io.StringIO()
        namespace = {"__name__": "__main__"}
        with contextlib.redirect_stdout(out):
            for cell in setup_cells((Path.cwd() / f"{lab}.py").read_text()):
                exec(compile(cell, f"{lab}.py", "exec"), namespace)
        os.chdir("../..")
        device = namespace.get("device")
        printed[lab] = {"text": out.getvalue(), "device": None if device is None else str(device)}
print("RESULT " + json.dumps(printed))
'''

# (CUDA present, MPS present, $COURSE_PROFILE) -> (the profile, the device)
SCENARIOS = {
    "nvidia-gpu": ((True, False, None), ("gpu", "cuda")),
    "mac-gpu": ((False, True, None), ("cpu", "mps")),  # MPS runs the laptop's settings
    "no-gpu": ((False, False, None), ("cpu", "cpu")),
    "cuda-and-mps": ((True, True, None), ("gpu", "cuda")),
    "grading-on-a-gpu": ((True, False, "smoke"), ("smoke", "cpu")),  # grading: same everywhere
    "gpu-profile-without-gpu": ((False, False, "gpu"), ("gpu", "cpu")),
}


def _run(cuda: bool, mps: bool, profile: str | None) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    env.pop("COURSE_PROFILE", None)
    env.pop("COURSE_MAX_STEPS", None)
    if profile:
        env["COURSE_PROFILE"] = profile
    labs = list(config.LAB_NAMES)
    done = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(int(cuda)), str(int(mps)), *labs],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


@pytest.mark.slow
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_each_lab_picks_and_prints_its_device(scenario):
    (cuda, mps, profile), (want_profile, want_device) = SCENARIOS[scenario]
    printed = _run(cuda, mps, profile)
    assert set(printed) == set(config.LAB_NAMES)
    for lab, got in printed.items():
        text = got["text"]
        if got["device"] is None:  # labs 00 and 01 print the profile before any device
            assert f"profile: {want_profile}\n" in text, (lab, text)
            if lab == "00_start_here":  # its first cell runs the doctor, which names the GPU
                name = " (Pretend GPU)" if want_device == "cuda" else ""
                assert f"{want_device}{name}, profile {want_profile!r}" in text, text
        else:
            assert got["device"] == want_device, (lab, got)
            assert f"profile {want_profile!r} on {want_device}" in text, (lab, text)


def test_labs_pick_their_device_with_course_utils_or_their_own_exercise():
    """Every lab that uses a device gets it from course_utils.pick_device (tested below and in
    tests/library/test_profiles.py), except lab 00, where pick_device is the exercise."""
    for lab in config.LAB_NAMES:
        source = (ROOT / "solutions" / lab / f"{lab}.py").read_text()
        if lab == "00_start_here":
            assert "def pick_device(prefer=None)" in source
            continue
        assert "pick_device(" not in source.replace("course_utils.pick_device(", ""), lab
        assert 'torch.device("cuda")' not in source and "'cuda'" not in source, lab
