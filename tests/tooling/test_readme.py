"""The README's promises: its first screen walks a newcomer through a virtual environment, the
CPU build of PyTorch, starting the course and running the tests, in that order; the test
command is exactly what CI runs, inside a fresh virtual environment; every lab is in the
syllabus table with buttons generated from the one repository address."""

from __future__ import annotations

import re

from helpers import ROOT

from course_utils import config

README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
FIRST_SCREEN = "\n".join(README.splitlines()[:35])


def _commands(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("python3 -m")]


def _step(needle: str) -> tuple[int, str]:
    """(position, command) of the first-screen command that contains ``needle``."""
    for index, command in enumerate(_commands(FIRST_SCREEN)):
        if needle in command:
            return index, command
    raise AssertionError(f"the README's first screen has no command with {needle!r}")


def _comment_above(command: str) -> str:
    lines = FIRST_SCREEN.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip() == command)
    return lines[index - 1]


def test_first_screen_has_the_steps_in_a_newcomers_order():
    venv, _ = _step("-m venv")
    torch, torch_command = _step("install torch")
    start, start_command = _step("course_utils start")
    test, test_command = _step("pytest")
    # A venv first; the CPU build of torch before anything that depends on torch.
    assert venv < torch < start < test, _commands(FIRST_SCREEN)
    assert "activate" in _commands(FIRST_SCREEN)[venv]
    assert "download.pytorch.org/whl/cpu" in torch_command
    assert '".[course]"' in start_command and '".[test]"' in test_command
    assert len(_commands(FIRST_SCREEN)) == 4, _commands(FIRST_SCREEN)


def test_the_test_command_says_how_long_it_takes_and_what_it_needs():
    _, command = _step("pytest")
    comment = _comment_above(command)
    assert "(what CI runs)" in comment
    assert re.search(r"\d+ minutes", comment), f"no expected time next to the command: {comment}"
    for needle in ("Chromium", "skipped", "apt-get install chromium", "brew install", "slowest"):
        assert needle in FIRST_SCREEN, needle


def test_ci_runs_the_readme_test_command_in_a_fresh_venv():
    _, readme_test = _step("pytest")
    ci_lines = [line.strip() for line in CI.splitlines() if line.strip()]
    assert ci_lines[-1] == readme_test
    venv = next(i for i, line in enumerate(ci_lines) if "-m venv" in line)
    assert "activate" in ci_lines[venv], ci_lines[venv]
    # torch is installed (in the venv) before the project, so that nothing pulls a CUDA build
    torch = next(i for i, line in enumerate(ci_lines) if '"torch==2.13.0"' in line)
    assert venv < torch < len(ci_lines) - 1


def test_syllabus_lists_every_lab_with_its_buttons():
    for lab in config.LABS:
        path = f"notebooks/{lab.name}/{lab.name}.ipynb"
        row = next(line for line in README.splitlines() if line.startswith(f"| [{lab.name}]"))
        assert config.colab_badge(path) in row, lab.name
        assert f"| {lab.minutes} |" in row
    assert config.binder_badge() in README
