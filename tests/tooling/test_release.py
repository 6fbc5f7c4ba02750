"""Build and release: notebooks are generated, deterministic, free of solutions, and a learner's
work in notebooks/ is never overwritten."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import LABS, ROOT, load, run_cli, save, solution_path, student_path

from course_utils import config
from course_utils.exercises import placeholder
from course_utils.tooling import authoring


@pytest.fixture()
def course_copy(tmp_path):
    """A copy of the course (sources, notebooks, config) to change freely."""
    for name in ("solutions", "notebooks"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy2(ROOT / "nbgrader_config.py", tmp_path)
    return tmp_path


@pytest.mark.parametrize("lab", LABS)
def test_solution_notebook_is_built_from_its_source(lab):
    source = ROOT / "solutions" / lab / f"{lab}.py"
    built = authoring.notebook_text(authoring.build_notebook(source))
    assert built == solution_path(lab).read_text(encoding="utf-8"), (
        f"{solution_path(lab)} is stale: run `python -m course_utils build {lab}`"
    )


@pytest.mark.parametrize("lab", LABS)
def test_student_notebook_has_no_solutions_and_fails_cleanly(lab):
    nb = load(student_path(lab))
    text = json.dumps(nb)
    for secret in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS"):
        assert secret not in text, f"{lab}: the release still contains {secret!r}"
    exercises = [
        c
        for c in nb["cells"]
        if c["metadata"].get("nbgrader", {}).get("solution") and c["cell_type"] == "code"
    ]
    assert exercises, f"{lab} has no exercises"
    for number, cell in enumerate(exercises, start=1):
        source = "".join(cell["source"])
        name = cell["metadata"]["nbgrader"]["grade_id"]
        expected = f'raise NotImplementedError("{placeholder(number, name)}")'
        assert "# YOUR CODE HERE" in source and expected in source, (lab, name)
        assert "raise NotImplementedError()" not in source, f"{lab}: {name} has a bare stub"
    for cell in nb["cells"]:
        assert not cell.get("outputs"), f"{lab}: committed with outputs"
    assert nb["metadata"]["course"]["lab"] == lab
    assert not list((ROOT / "notebooks" / lab).glob("*.py")), "a lab source leaked into notebooks/"


@pytest.mark.parametrize("lab", LABS)
def test_every_exercise_has_tests_with_points_and_hints(lab):
    nb = load(solution_path(lab))
    exercises, tested = [], set()
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            exercises.append(meta["grade_id"])
        if meta.get("grade") and cell["cell_type"] == "code":
            assert meta["points"] > 0 and meta["locked"]
            assert cell["metadata"]["course"]["hint"]
            assert "BEGIN HIDDEN TESTS" in "".join(cell["source"]), (
                f"{lab}/{meta['grade_id']}: no hidden tests"
            )
            tested.add(cell["metadata"]["course"]["exercise"])
    assert set(exercises) == tested
    minimum = {"00_start_here": 2}.get(lab, 4)
    assert len(exercises) >= minimum, f"{lab} has {len(exercises)} exercises, expected {minimum}+"


def test_release_to_another_folder_matches_the_committed_notebooks(tmp_path):
    result = run_cli("release", "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stdout + result.stderr
    for lab in LABS:
        fresh = (tmp_path / "out" / lab / f"{lab}.ipynb").read_bytes()
        assert fresh == student_path(lab).read_bytes(), f"{lab}: release is not deterministic"


def test_release_check_names_a_drifted_notebook(course_copy):
    nb = load(course_copy / "solutions" / LABS[0] / f"{LABS[0]}.ipynb")
    nb["cells"][0]["source"] += "\nA sentence added to the source."
    save(nb, course_copy / "solutions" / LABS[0] / f"{LABS[0]}.ipynb")
    before = (course_copy / "notebooks" / LABS[0] / f"{LABS[0]}.ipynb").read_bytes()
    result = run_cli("release", "--check", env={"COURSE_ROOT": str(course_copy)})
    assert result.returncode == 1
    assert f"drifted: notebooks/{LABS[0]}/{LABS[0]}.ipynb" in result.stdout
    assert (course_copy / "notebooks" / LABS[0] / f"{LABS[0]}.ipynb").read_bytes() == before


def test_build_check_names_a_stale_notebook(course_copy):
    source = course_copy / "solutions" / LABS[0] / f"{LABS[0]}.py"
    source.write_text(source.read_text() + "\n# %% [markdown]\n# One more paragraph.\n")
    result = run_cli("build", "--check", env={"COURSE_ROOT": str(course_copy)})
    assert result.returncode == 1
    assert "stale:" in result.stdout and f"{LABS[0]}.ipynb" in result.stdout


def test_release_never_overwrites_a_learners_work(course_copy):
    lab = LABS[0]
    target = course_copy / "notebooks" / lab / f"{lab}.ipynb"
    nb = load(target)
    nb["cells"][0]["source"] = "stale text, so that a release would change this file"
    exercise = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    exercise["source"] = "def pick_device(prefer=None):\n    return 'my own work'\n"
    save(nb, target)
    worked_on = target.read_bytes()
    env = {"COURSE_ROOT": str(course_copy)}

    result = run_cli("release", lab, env=env)
    assert result.returncode == 1
    assert "looks worked on" in result.stdout
    assert target.read_bytes() == worked_on

    result = run_cli("release", lab, "--force", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    backups = list(target.parent.glob(f"{lab}.backup-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == worked_on
    assert target.read_bytes() == student_path(lab).read_bytes()


def test_release_updates_a_stale_untouched_notebook(course_copy):
    lab = LABS[0]
    target = course_copy / "notebooks" / lab / f"{lab}.ipynb"
    nb = load(target)
    nb["cells"][0]["source"] = "an older title"
    save(nb, target)
    result = run_cli("release", lab, env={"COURSE_ROOT": str(course_copy)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert target.read_bytes() == student_path(lab).read_bytes()


@pytest.mark.parametrize(
    "header, message",
    [
        ('# %% exercise="x"\ndef f():\n    return 1\n', "has no ### BEGIN/END SOLUTION"),
        ('# %% test="x" points=1 hint="h"\nprint(1)\n', "must follow its exercise cell"),
        (
            '# %% exercise="x"\n### BEGIN SOLUTION\n### END SOLUTION\n\n'
            '# %% test="x" points=1 hint="h"\n1 + 1\n',
            "must not end with a bare expression",
        ),
        (
            '# %% exercise="x"\n### BEGIN SOLUTION\n### END SOLUTION\n\n'
            '# %% test="x" points=1 hint="h"\ncheck_raises(ValueError, int, "a")\n',
            "must not end with a bare check_raises",
        ),
        (
            '# %% exercise="x"\n### BEGIN SOLUTION\n### END SOLUTION\n\n'
            '# %% test="x" hint="h"\nprint(1)\n',
            "need points=",
        ),
        (
            '# %% exercise="x"\n### BEGIN SOLUTION\n### END SOLUTION\n\n'
            '# %% test="x" points=1\nprint(1)\n',
            "need hint=",
        ),
        ('# %% colour="red"\nx = 1\n', "unknown header keys"),
        (
            '# %% [markdown] answer="v" points=2\n# Which claim holds? Why?\n#\n'
            "# YOUR ANSWER HERE\n",
            "its question would vanish",
        ),
        (
            '# %%\nx = 1\n\n# %% [markdown] answer="v" points=2\n# Which claim holds? Why?\n',
            "needs its question in a markdown cell right above it",
        ),
    ],
    ids=[
        "no-solution-markers",
        "orphan-test",
        "bare-value",
        "bare-check-raises",
        "no-points",
        "no-hint",
        "unknown-key",
        "answer-question-in-answer-cell",
        "answer-without-question-above",
    ],
)
def test_authoring_rules_are_enforced(tmp_path, header, message):
    source = tmp_path / "lab.py"
    source.write_text("# %% [markdown]\n# # Title\n\n" + header)
    with pytest.raises(authoring.AuthoringError, match=message.replace("=", "=")):
        authoring.build_notebook(source)


def test_an_answer_cell_below_its_question_builds(tmp_path):
    source = tmp_path / "lab.py"
    source.write_text(
        "# %% [markdown]\n# # Title\n\n# %% [markdown]\n# Which claim holds? Why?\n\n"
        '# %% [markdown] answer="v" points=2\n# A model answer.\n'
    )
    cells = authoring.build_notebook(source).cells
    assert cells[-2].source == "Which claim holds? Why?"
    assert cells[-1].metadata["nbgrader"]["solution"] is True


def test_setup_cell_and_badges_come_from_the_one_address():
    nb = load(student_path(LABS[0]))
    assert config.REPOSITORY in "".join(nb["cells"][0]["source"])
    assert "".join(nb["cells"][1]["source"]) == authoring.setup_cell_source()
