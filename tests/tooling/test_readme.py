"""The README's promises: two commands on its first screen, the second being exactly what CI
runs; every lab in the syllabus table with buttons generated from the one repository address."""

from __future__ import annotations

from helpers import ROOT

from course_utils import config

README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _commands(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("python3 -m")]


def test_first_screen_has_the_setup_and_test_commands():
    first_screen = "\n".join(README.splitlines()[:30])
    commands = _commands(first_screen)
    assert len(commands) == 2, commands
    start, test = commands
    assert "jupyter lab" in start and '".[course]"' in start
    assert '".[test]"' in test and "pytest" in test


def test_ci_runs_exactly_the_readme_test_command():
    readme_test = _commands("\n".join(README.splitlines()[:30]))[1]
    ci_lines = [line.strip() for line in CI.splitlines() if line.strip()]
    assert ci_lines[-1] == readme_test
    # torch is installed before the project, so that nothing pulls a CUDA build
    assert CI.index('"torch==2.13.0"') < CI.index(readme_test)


def test_syllabus_lists_every_lab_with_its_buttons():
    for lab in config.LABS:
        path = f"notebooks/{lab.name}/{lab.name}.ipynb"
        row = next(line for line in README.splitlines() if line.startswith(f"| [{lab.name}]"))
        assert config.colab_badge(path) in row, lab.name
        assert f"| {lab.minutes} |" in row
    assert config.binder_badge() in README
