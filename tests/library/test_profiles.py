"""Profiles, device choice and seeding."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

import course_utils
from course_utils import profiles


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert course_utils.current_profile() == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", " CPU ")
    assert course_utils.current_profile() == "cpu"


def test_default_profile_follows_cuda(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    with mock.patch("torch.cuda.is_available", return_value=True):
        assert course_utils.current_profile() == "gpu"
    with mock.patch("torch.cuda.is_available", return_value=False):
        assert course_utils.current_profile() == "cpu"


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "turbo")
    with pytest.raises(ValueError, match="not a profile; expected one of smoke, cpu, gpu"):
        course_utils.current_profile()


def test_settings_pick_the_current_profile_and_fall_back_to_cpu(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    cfg = course_utils.settings(smoke=dict(steps=2), cpu=dict(steps=200), gpu=dict(steps=9))
    assert cfg.steps == 2 and cfg.profile == "smoke"
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    assert course_utils.settings(cpu=dict(steps=200)).steps == 200


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(smoke=dict(a=1)), "needs at least cpu="), (dict(cpu={}, tpu={}), "unknown profile")],
)
def test_settings_reject_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        course_utils.settings(**kwargs)


def test_pick_device(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    with (
        mock.patch("torch.cuda.is_available", return_value=False),
        mock.patch.object(profiles, "_mps_available", return_value=False),
    ):
        assert course_utils.pick_device() == torch.device("cpu")
        with pytest.raises(RuntimeError, match="'cuda' is not available"):
            course_utils.pick_device("cuda")
    with mock.patch("torch.cuda.is_available", return_value=True):
        assert course_utils.pick_device() == torch.device("cuda")
        monkeypatch.setenv("COURSE_PROFILE", "smoke")  # grading is the same everywhere
        assert course_utils.pick_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        course_utils.pick_device("tpu")


def test_seed_everything_repeats_runs():
    course_utils.seed_everything(3)
    first = torch.rand(4)
    course_utils.seed_everything(3)
    assert torch.equal(first, torch.rand(4))
    with pytest.raises(ValueError, match="non-negative int"):
        course_utils.seed_everything(-1)


def test_importing_the_package_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, course_utils; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
