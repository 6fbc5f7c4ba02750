"""The course's own nbgrader preprocessors (besides the safeguard's), used by
:func:`course_utils.tooling.nbgrader_setup.configure`.

The tooling modules import in one direction: ``cli`` -> ``release``/``grading``/``autograde``
-> ``course_dir`` -> ``nbgrader_setup`` -> ``nbgrader_steps``/``safeguard`` -> ``sandbox``.
Nothing here imports ``release``, ``grading`` or ``course_dir``.

- :class:`NamePlaceholders` (generate_assignment): each exercise's stub names its exercise.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor

from ..exercises import placeholder

_STUB = "raise NotImplementedError()"


def name_placeholders(nb) -> None:
    """Replace nbgrader's bare stub in each exercise cell by one that names the exercise.

    Exercises are numbered 1, 2, ... in notebook order; the name is the exercise's grade id.
    Runs inside ``nbgrader generate_assignment`` (:class:`NamePlaceholders`), so the
    instructor's own nbgrader commands release exactly what ``release`` does.
    """
    number = 0
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("solution") or meta.get("grade"):
            continue
        number += 1
        message = placeholder(number, meta["grade_id"])
        cell.source = cell.source.replace(_STUB, f'raise NotImplementedError("{message}")')


class NamePlaceholders(NbGraderPreprocessor):
    """nbgrader preprocessor: runs right after ClearSolutions (see nbgrader_setup)."""

    def preprocess(self, nb, resources):
        name_placeholders(nb)
        return nb, resources
