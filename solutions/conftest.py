"""The suite executes every solution notebook here with nbval, in the ``smoke`` profile unless
``COURSE_PROFILE`` says otherwise (the hooks below set it for nbval's kernels only, and take it
away after the last notebook). The ``cpu`` profile takes minutes per lab:
``COURSE_PROFILE=cpu python -m pytest solutions/<lab>`` runs a lab as a laptop does, and then
these hooks also check the figures a lab's prose marks as measured (``55<!-- measured -->``, see
:mod:`course_utils.tooling.figures` and CONTRIBUTING.md): after a notebook's last cell, each
marked figure must be among the numbers its cells printed, or that last cell fails and says
which figure the run no longer produces.
"""

from __future__ import annotations

import os

import pytest

from course_utils.profiles import ENV_VAR

_outputs: dict[str, list[str]] = {}  # notebook path -> the text its cells printed
_last: dict[str, str] = {}  # notebook path -> node id of its last cell item
_profile_set_here: list[bool] = []  # True while COURSE_PROFILE=smoke is ours, not the user's


def _is_notebook_cell(item) -> bool:
    return type(item).__name__ == "IPyNbCell"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before nbval starts a notebook's kernel (while its first cell is set up): the smoke
    profile, unless the run chose one."""
    if _is_notebook_cell(item) and not os.environ.get(ENV_VAR) and not _profile_set_here:
        os.environ[ENV_VAR] = "smoke"
        _profile_set_here.append(True)


def pytest_runtest_teardown(item, nextitem):
    if _profile_set_here and (nextitem is None or not _is_notebook_cell(nextitem)):
        os.environ.pop(ENV_VAR, None)  # the tests that follow get the environment they had
        _profile_set_here.clear()


def pytest_collection_modifyitems(items):
    for item in items:
        if _is_notebook_cell(item):
            _last[str(item.parent.path)] = item.nodeid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    if not _is_notebook_cell(item):
        return result
    from course_utils.tooling.figures import output_text

    path = str(item.parent.path)
    _outputs.setdefault(path, []).append(output_text(getattr(item, "test_outputs", None)))
    if _last.get(path) == item.nodeid:
        _check_figures(path, "\n".join(_outputs.pop(path)))
    return result


def _check_figures(path: str, printed: str) -> None:
    import nbformat

    from course_utils.profiles import current_profile
    from course_utils.tooling.figures import check

    if current_profile() != "cpu":  # the figures are the cpu profile's (a laptop's run)
        return
    nb = nbformat.read(path, as_version=4)
    problems = check([(c.cell_type, c.source) for c in nb.cells], printed)
    if problems:
        raise AssertionError(
            f"{path}: figures marked as measured that this run did not print:\n  "
            + "\n  ".join(problems)
        )
