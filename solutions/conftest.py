"""The suite executes every solution notebook here with nbval (in the ``cpu`` profile unless
``COURSE_PROFILE`` says otherwise). This hook reuses that run, at no extra cost, to check the
figures a lab's prose marks as measured (``55<!-- measured -->``, see
:mod:`course_utils.tooling.figures` and CONTRIBUTING.md): after a notebook's last cell, each
marked figure must be among the numbers its cells printed, or that last cell fails and says
which figure the run no longer produces.
"""

from __future__ import annotations

import pytest

_outputs: dict[str, list[str]] = {}  # notebook path -> the text its cells printed
_last: dict[str, str] = {}  # notebook path -> node id of its last cell item


def pytest_collection_modifyitems(items):
    for item in items:
        if type(item).__name__ == "IPyNbCell":
            _last[str(item.parent.path)] = item.nodeid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    if type(item).__name__ != "IPyNbCell":
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
