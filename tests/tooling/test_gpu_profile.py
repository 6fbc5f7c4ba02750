"""The ``gpu`` profile of every lab, checked on the CPU, and the GPU check script's dry mode.

No GPU runs the suite, yet a learner on Colab gets the ``gpu`` profile: bigger models, longer
contexts, more data. Each lab's solution notebook runs here top to bottom in that profile with
its models and data at their real ``gpu`` sizes, but with every training loop capped at two
optimisation steps (``COURSE_MAX_STEPS=2``, honoured by ``course_utils.settings`` and
``course_utils.training.train``; evaluation batches, a timing's repeats and seeds beyond two
shrink with it), through ``benchmarks/gpu_check.py --mode dry``. A shape that
does not fit, a setting that breaks an assertion, a context longer than a model's positions or
a size that needs more memory than a laptop has fails here.

What this leaves out: the full-length runs (their results, and whether the prose's claims
hold in the ``gpu`` profile: that needs ``benchmarks/gpu_check.sh`` on a GPU), CUDA itself
(kernels, float precision on the device, tensors left on the wrong device: on the CPU every
tensor is on the same device) and GPU memory (only the CPU's peak is measured here).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils import config

ROOT = Path(__file__).resolve().parents[2]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks/gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _quiet_threads(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")


# Left out of the suite for time, unless COURSE_GPU_DRY_ALL=1: lab 08's dry run costs about
# 420 CPU s (its exposure scoring, 15 secrets x 5,001 codes x 4 models at the gpu size, is not
# a training loop, so no step cap shortens it). `bash benchmarks/gpu_check.sh OUT --mode dry
# 08_training_your_own` checks it by hand.
SLOW_DRY = {"08_training_your_own"}


@pytest.mark.slow
@pytest.mark.parametrize("lab", config.LAB_NAMES)
def test_gpu_profile_runs_on_the_cpu_with_two_steps(lab, tmp_path):
    if lab in SLOW_DRY and not os.environ.get("COURSE_GPU_DRY_ALL"):
        pytest.skip(f"{lab}'s dry run takes minutes: COURSE_GPU_DRY_ALL=1 includes it")
    record = _gpu_check().run_lab(lab, "dry", tmp_path)
    printed = (tmp_path / f"{lab}.txt").read_text()
    assert record["ok"], f"{lab} fails in the gpu profile: {record['error']}\n{printed[-3000:]}"
    assert "profile 'gpu' on cpu" in printed or "profile: gpu" in printed, printed[:500]
    source = (ROOT / "solutions" / lab / f"{lab}.py").read_text()
    if "gpu=dict(" in source and "steps=" in source:  # its loops really were capped
        assert "(COURSE_MAX_STEPS=2:" in printed, printed[:500]
    assert record["peak"] and record["peak"].startswith("cpu "), record


def test_gpu_check_joins_a_print_the_kernel_sent_in_pieces():
    """Unbuffered, one print can arrive as several stream messages (seen in CI)."""
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "gpu_check peak memory:"},
        {"output_type": "stream", "name": "stdout", "text": " cpu 482 MiB\nnext"},
        {"output_type": "display_data", "data": {"text/plain": "shown"}},
        {"output_type": "stream", "name": "stdout", "text": "last\n"},
    ]
    lines = _gpu_check()._printed(outputs)
    assert lines == ["gpu_check peak memory: cpu 482 MiB", "next", "shown", "last"], lines


def test_gpu_check_records_a_failing_lab(tmp_path, monkeypatch):
    gpu_check = _gpu_check()
    lab = config.LAB_NAMES[0]
    folder = tmp_path / "solutions" / lab
    folder.mkdir(parents=True)
    cells = [
        nbformat.v4.new_code_cell("import os\nprint('profile', os.environ['COURSE_PROFILE'])"),
        nbformat.v4.new_code_cell("raise MemoryError('pretend the GPU is full')"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / f"{lab}.ipynb")
    monkeypatch.setattr(gpu_check, "ROOT", tmp_path)
    out = tmp_path / "out"
    assert gpu_check.main([str(out), "--mode", "dry", lab]) == 1
    summary = json.loads((out / "summary.json").read_text())
    (record,) = summary["labs"]
    assert not record["ok"] and record["error"]["cell"] == 1, record
    assert record["error"]["exception"] == "MemoryError", record
    assert "pretend the GPU is full" in (out / "summary.md").read_text()
    printed = (out / f"{lab}.txt").read_text()
    assert printed.startswith("profile gpu\n") and "ERROR in cell 1: MemoryError" in printed
    assert "COURSE_PROFILE" not in os.environ or os.environ["COURSE_PROFILE"] != "gpu"


def test_gpu_check_refuses_the_gpu_modes_without_cuda(tmp_path):
    done = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", str(tmp_path), "--mode", "t4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""},
        timeout=120,
    )
    assert done.returncode == 2 and "needs CUDA" in done.stdout, done.stdout + done.stderr


@pytest.mark.slow
def test_gpu_check_dry_mode_end_to_end(tmp_path):
    """The one command, as a person runs it, in its dry mode on one lab."""
    done = subprocess.run(
        [
            "bash",
            "benchmarks/gpu_check.sh",
            str(tmp_path / "out"),
            "--mode",
            "dry",
            "03_transformer_block",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "03_transformer_block.txt",
        "summary.json",
        "summary.md",
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "dry" and summary["device"] == "CPU (dry)"
    (record,) = summary["labs"]
    assert record["ok"] and record["wall_s"] > 0 and record["kernel_cpu_s"] > 0, record
    table = (out / "summary.md").read_text()
    assert "| 03_transformer_block |" in table and "| ok |" in table, table
    printed = (out / "03_transformer_block.txt").read_text()
    assert "profile 'gpu' on cpu" in printed and "gpu_check peak memory: cpu" in printed


def test_gpu_check_stops_a_lab_at_its_budget_and_goes_on(tmp_path, monkeypatch):
    gpu_check = _gpu_check()
    labs = config.LAB_NAMES[:2]
    for lab, source in zip(labs, ["import time\ntime.sleep(120)", "print('second lab ran')"]):
        folder = tmp_path / "solutions" / lab
        folder.mkdir(parents=True)
        cells = [nbformat.v4.new_code_cell(source)]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / f"{lab}.ipynb")
    monkeypatch.setattr(gpu_check, "ROOT", tmp_path)
    monkeypatch.setattr(gpu_check, "MIN_CELL_TIMEOUT_S", 15)
    out = tmp_path / "out"
    assert gpu_check.main([str(out), "--mode", "dry", "--budget", "1", *labs]) == 1
    first, second = json.loads((out / "summary.json").read_text())["labs"]
    assert not first["ok"] and "Timeout" in first["error"]["exception"], first
    assert first["wall_s"] < 60, first
    assert second["ok"] and "second lab ran" in (out / f"{labs[1]}.txt").read_text(), second
