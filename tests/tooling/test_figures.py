"""Figures the prose marks as measured (``55<!-- measured -->``) are checked against what
the executed solution notebook printed (course_utils/tooling/figures.py, hooked into the
suite's nbval run by solutions/conftest.py). The wiring test runs nbval on a two-cell
notebook twice: about 10 s, most of it two kernel starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nbformat
import pytest
from helpers import ROOT

from course_utils.tooling.figures import check, measured_figures


def _md(text: str) -> list[tuple[str, str]]:
    return [("markdown", text)]


def test_marked_figures_are_found_as_printed_or_within_their_tolerance():
    printed = "p(left) / p(right) = 55.0\nchosen positions: 5,260 of 40,000\ntook 41.7 s\n"
    assert check(_md("It is 55.0<!-- measured --> times more likely."), printed) == []
    assert check(_md("about 5260<!-- measured --> positions"), printed) == []
    assert check(_md("about 40 s<!-- measured ±10% -->"), printed) == []
    (problem,) = check(_md("30 to 50<!-- measured --> times more likely"), printed)
    assert "the prose says 50 (marked as measured)" in problem and "as printed" in problem
    (problem,) = check(_md("about 9,000<!-- measured ±10% --> chosen positions"), printed)
    assert "9,000" in problem and "within ±10%" in problem
    assert check(_md("figures without a mark, such as 9,000, are not checked"), printed) == []
    assert check([("code", "x = 1  # 7<!-- measured -->")], printed) == []


def test_a_mark_must_follow_its_number():
    figures, problems = measured_figures(_md("It took 3 minutes <!-- measured --> here."))
    assert [f.text for f in figures] == ["3"]  # a short unit may stand between
    assert problems == []
    figures, problems = measured_figures(_md("Quite a lot<!-- measured -->."))
    assert figures == [] and "does not follow a number" in problems[0]
    (figure,) = measured_figures(_md("on 2 cores it took 40<!-- measured ±25% -->"))[0]
    assert figure.text == "40" and figure.tolerance == 0.25


@pytest.mark.slow
def test_the_suite_checks_marked_figures_after_a_notebook_runs(tmp_path):
    folder = tmp_path / "solutions"
    folder.mkdir()
    shutil.copy(ROOT / "solutions" / "conftest.py", folder)
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")

    def run(figure: str) -> subprocess.CompletedProcess:
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell(f"The model is {figure}<!-- measured --> times surer."),
            nbformat.v4.new_code_cell("print(f'ratio: {110 / 2:.0f}')"),
        ]
        nbformat.write(nb, folder / "lab.ipynb")
        env = {**os.environ, "COURSE_PROFILE": "cpu", "PYTHONPATH": str(ROOT)}
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p", "no:randomly",
             "-p", "no:cacheprovider", "solutions/lab.ipynb"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    good = run("55")
    assert good.returncode == 0, good.stdout[-3000:]
    bad = run("30")
    assert bad.returncode == 1, bad.stdout[-3000:]
    assert "the prose says 30 (marked as measured)" in bad.stdout


def test_nbval_runs_the_solutions_in_smoke_unless_a_profile_is_chosen(tmp_path):
    """The suite's nbval run is the smoke profile's (the cpu profile takes minutes per lab); a
    profile the run chose wins, and the tests after the notebooks get their environment back."""
    folder = tmp_path / "solutions"
    folder.mkdir()
    shutil.copy(ROOT / "solutions" / "conftest.py", folder)
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_after.py").write_text(
        "import os\n\n\ndef test_after():\n    print('after:', os.environ.get('COURSE_PROFILE'))\n",
        encoding="utf-8",
    )

    def profile_seen(**extra: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "COURSE_PROFILE"}
        env.update(PYTHONPATH=str(ROOT), **extra)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-s", "--nbval-lax", "-p", "no:randomly",
             "-p", "no:cacheprovider", "solutions/lab.ipynb", "test_after.py"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:]
        return done.stdout

    nb_cell = (
        "import os\nprint(os.environ.get('COURSE_PROFILE'))\n"
        "assert os.environ.get('COURSE_PROFILE') == os.environ['EXPECTED']"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(nb_cell)]
    nbformat.write(nb, folder / "lab.ipynb")
    assert "after: None" in profile_seen(EXPECTED="smoke")
    assert "after: gpu" in profile_seen(EXPECTED="gpu", COURSE_PROFILE="gpu")
