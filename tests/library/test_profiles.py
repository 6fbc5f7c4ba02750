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


def test_usable_cpus_reads_the_cgroup_quota_v2_and_v1(tmp_path, monkeypatch):
    from course_utils import profiles

    monkeypatch.setattr(profiles, "affinity_cpus", lambda: 8)
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert profiles.cgroup_cpu_limit(tmp_path) == 1.5
    assert profiles.usable_cpus(tmp_path) == 2  # 1.5 CPUs of quota: two threads, not eight
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert profiles.cgroup_cpu_limit(tmp_path) is None and profiles.usable_cpus(tmp_path) == 8
    v1 = tmp_path / "v1"
    (v1 / "cpu,cpuacct").mkdir(parents=True)
    (v1 / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000")
    assert profiles.usable_cpus(v1) == 1
    (v1 / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1")
    assert profiles.usable_cpus(v1) == 8
    assert profiles.cgroup_cpu_limit(tmp_path / "missing") is None


def test_course_threads_overrides_and_setup_calls_apply_it(monkeypatch):
    import torch

    from course_utils import profiles

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("COURSE_THREADS", "1")
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        profiles.seed_everything(0)
        assert torch.get_num_threads() == 1
        monkeypatch.delenv("COURSE_THREADS")
        assert profiles.thread_count() == 3  # OMP_NUM_THREADS, as the grading kernels set it
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(profiles, "usable_cpus", lambda: 1)
        profiles.settings(cpu=dict(steps=1))
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("COURSE_THREADS", "none")
        with pytest.raises(ValueError, match="COURSE_THREADS='none'"):
            profiles.thread_count()
    finally:
        torch.set_num_threads(before)


def test_a_profile_caps_threads_unless_the_learner_chose(monkeypatch):
    import torch

    from course_utils import profiles

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("COURSE_THREADS", raising=False)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setenv("COURSE_PROFILE", "cpu")
        monkeypatch.setattr(profiles, "usable_cpus", lambda: 2)
        monkeypatch.setattr(profiles, "_torch_default", [2])
        cfg = profiles.settings(cpu=dict(steps=1, threads=1), gpu=dict(steps=2))
        assert torch.get_num_threads() == 1 and not hasattr(cfg, "threads")
        profiles.seed_everything(1)  # as train(seed=...) does: the profile's cap stays
        assert torch.get_num_threads() == 1
        profiles.settings(cpu=dict(steps=1))
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("COURSE_THREADS", "2")  # the learner's choice wins
        profiles.settings(cpu=dict(steps=1, threads=1))
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError, match="threads=0; expected a whole number"):
            profiles.settings(cpu=dict(threads=0))
    finally:
        profiles._threads_limit.clear()
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu")],
)
def test_pick_device_falls_back_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    with (
        mock.patch("torch.cuda.is_available", return_value=cuda),
        mock.patch("torch.backends.mps.is_available", return_value=mps),
    ):
        assert course_utils.pick_device() == torch.device(expected)
        assert course_utils.pick_device("cpu") == torch.device("cpu")  # always there
        # the profile follows CUDA only: a Mac's GPU runs the laptop's (cpu) settings
        assert course_utils.current_profile() == ("gpu" if cuda else "cpu")
        for name, present in (("cuda", cuda), ("mps", mps)):
            if present:
                assert course_utils.pick_device(name.upper()) == torch.device(name)
            else:
                with pytest.raises(RuntimeError, match=f"'{name}' is not available"):
                    course_utils.pick_device(name)
        monkeypatch.setenv("COURSE_PROFILE", "smoke")
        assert course_utils.pick_device() == torch.device("cpu")  # grading: CPU everywhere
        if cuda:
            assert course_utils.pick_device("cuda") == torch.device("cuda")  # asked: given


def test_pick_device_without_an_mps_backend(monkeypatch):
    """Older or unusual builds of PyTorch have no torch.backends.mps at all."""
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    with (
        mock.patch("torch.cuda.is_available", return_value=False),
        mock.patch.object(torch.backends, "mps", None),
    ):
        assert course_utils.pick_device() == torch.device("cpu")
        with pytest.raises(RuntimeError, match="'mps' is not available"):
            course_utils.pick_device("mps")


def test_max_steps_caps_loops_not_sizes(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "gpu")
    monkeypatch.delenv("COURSE_MAX_STEPS", raising=False)
    gpu = dict(
        steps=3000, warmup=200, iso_steps=(300, 1000, 3000), pos_steps=1, sizes=[9, 9],
        eval_batches=200, seeds=(0, 1, 2), iso_seeds=[5, 6], d_model=512, block_size=1024,
        timing_repeats=3,
    )  # fmt: skip
    assert course_utils.settings(cpu={}, gpu=gpu).steps == 3000
    monkeypatch.setenv("COURSE_MAX_STEPS", "2")
    cfg = course_utils.settings(cpu={}, gpu=gpu)
    assert (cfg.steps, cfg.warmup, cfg.iso_steps, cfg.pos_steps) == (2, 200, (2, 4, 6), 1)
    assert (cfg.eval_batches, cfg.seeds, cfg.iso_seeds, cfg.timing_repeats) == (
        2,
        (0, 1),
        [5, 6],
        1,
    )
    assert (cfg.sizes, cfg.d_model, cfg.block_size) == ([9, 9], 512, 1024)
    assert cfg.profile == "gpu"
    out = capsys.readouterr().out
    assert (
        "COURSE_MAX_STEPS=2: eval_batches, iso_steps, seeds, steps, timing_repeats capped" in out
    ), out
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("COURSE_MAX_STEPS", bad)
        with pytest.raises(ValueError, match="COURSE_MAX_STEPS"):
            course_utils.settings(cpu={})
