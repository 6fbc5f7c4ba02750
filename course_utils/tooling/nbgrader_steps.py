"""The course's own nbgrader preprocessors (besides the safeguard's), used by
:func:`course_utils.tooling.nbgrader_setup.configure`.

The tooling modules import in one direction: ``cli`` -> ``release``/``grading``/``autograde``
-> ``course_dir`` -> ``nbgrader_setup`` -> ``nbgrader_steps``/``safeguard`` -> ``sandbox``.
Nothing here imports ``release``, ``grading`` or ``course_dir``.

- :class:`NamePlaceholders` (generate_assignment): each exercise's stub names its exercise.
- :class:`RepairMetadata` (autograde, before nbgrader's ``OverwriteCells``): undoes what
  editing in JupyterLab can do to nbgrader's metadata (:func:`repair`), so that ``nbgrader
  autograde`` grades such a notebook instead of stopping with "Inconsistent checksums" or
  "Notebook failed to validate"; ``python -m course_utils grade`` runs the same function.
- :class:`QuietOverwriteCells`: nbgrader's ``OverwriteCells`` without its false alarm
  "Attribute 'checksum' ... has changed" for every untouched test cell with hidden tests
  (the release removed them; restoring them is the point). An edited locked cell is still
  reported, in one line.
- :class:`CheckedNotebookExporter` (``c.Autograde.exporter_class``): reads each submitted
  notebook's JSON before nbformat does, so that a file nbgrader cannot read (a cell whose
  source is not text, broken JSON) is one line for that student instead of nbformat's
  validation error and nbgrader's traceback; the other students are graded as usual.
- :func:`alembic_head`: the gradebook schema's version, read in this process (nbgrader runs
  the ``alembic`` command for it each time it creates a gradebook: 3-4 CPU seconds, the
  largest single cost of ``grade``, which creates one per notebook).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import sys
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells

from ..exercises import placeholder

_STUB = "raise NotImplementedError()"
REPAIRED = "repaired: "  # RepairMetadata's log lines (``course_utils autograde`` shows them)


def name_placeholders(nb) -> None:
    """Replace nbgrader's bare stub in each exercise cell by one that names the exercise.

    Test cells also lose their hint and nudge from the metadata: the learner's notebook
    carries no hint text at all (they are in ``course_utils/hints/<lab>.json``).

    Exercises are numbered 1, 2, ... in notebook order; the name is the exercise's grade id.
    Runs inside ``nbgrader generate_assignment`` (:class:`NamePlaceholders`), so the
    instructor's own nbgrader commands release exactly what ``release`` does.
    """
    number = 0
    for cell in nb.cells:
        course = cell.get("metadata", {}).get("course")
        if isinstance(course, dict):  # hints stay out of what learners read before trying
            course.pop("hint", None)
            course.pop("nudge", None)
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


@functools.cache
def alembic_head() -> str:
    """What ``alembic heads`` prints for nbgrader's migrations (their newest revision)."""
    import nbgrader
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(Path(nbgrader.__file__).parent / "alembic"))
    return ScriptDirectory.from_config(config).get_current_head()


def install_alembic_head() -> None:
    """Make nbgrader read the schema version in this process instead of running ``alembic``."""
    import nbgrader.api

    nbgrader.api.get_alembic_version = alembic_head


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
    return meta.get("grade_id") if isinstance(meta, dict) else None


def check_sources(data: dict) -> str:
    """'' when every cell's source is text, else one line saying which cell is not."""
    for index, cell in enumerate(data.get("cells", [])):
        if not isinstance(cell, dict):
            return f"cell {index + 1} is not a notebook cell (the file was edited by hand?)"
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            continue
        if not isinstance(source, str):
            return (
                f"cell {index + 1}'s source is not text (it is {type(source).__name__}); "
                "the file was edited outside JupyterLab: restore that cell"
            )
    return ""


def notebook_problem(path: Path, name: str) -> str:
    """'' when nbgrader can read the notebook at ``path``, else one line, starting with
    ``name``, saying what is wrong with it. Reads the file only."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return f"{name} is not a readable notebook ({type(error).__name__})"
    if not isinstance(data, dict) or not isinstance(data.get("cells", []), list):
        return f"{name} is not a notebook (no list of cells)"
    problem = check_sources(data)
    return f"{name}: {problem}" if problem else ""


class SubmissionProblem(Exception):
    """A submitted notebook nbgrader cannot read; the message is the whole story (one line)."""


class _OneLineForSubmissionProblems(logging.Filter):
    """nbgrader logs any error while converting a student's notebook as "There was an error
    processing assignment: <folder>" followed by the whole traceback (``convert_notebooks`` in
    nbgrader/converters/base.py; nbgrader has no setting for it). While nbgrader handles a
    :class:`SubmissionProblem` (a learner's file, not a fault of the grader), the problem's
    line replaces the traceback and the folder line goes: the line names the file. nbgrader's
    closing "Please see the the above traceback" then points at those lines when no other
    error printed a traceback. Every other record, and every other error's traceback, passes
    unchanged."""

    _TRACEBACK = "Traceback (most recent call last)"
    _SEE_ABOVE = "Please see the the above traceback"

    def __init__(self):
        super().__init__()
        self.problems = self.tracebacks = 0  # since nbgrader's last closing line

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        error = sys.exc_info()[1]
        if not isinstance(error, SubmissionProblem):
            if record.msg.startswith(self._SEE_ABOVE):
                if self.problems and not self.tracebacks:
                    record.msg = "The lines above say what is wrong with each of these files."
                    record.args = ()
                self.problems = self.tracebacks = 0
            elif record.msg.startswith(self._TRACEBACK):
                self.tracebacks += 1
            return True
        if record.msg.startswith(self._TRACEBACK):
            self.problems += 1
            record.msg, record.args = str(error), ()
            return True
        return not record.msg.startswith("There was an error processing assignment:")


_ONE_LINE = _OneLineForSubmissionProblems()


class CheckedNotebookExporter(NotebookExporter):
    """The exporter of ``nbgrader autograde`` (``c.Autograde.exporter_class``, a setting
    nbgrader offers): the notebook exporter, but it first checks that the submitted file is a
    notebook nbformat can read (:func:`notebook_problem`). nbformat would log "Notebook JSON
    is invalid", nbconvert then raise a NotebookValidationError after nbgrader's first
    preprocessor, before any of the course's preprocessors run; this raises
    :class:`SubmissionProblem` with one line instead. nbgrader then, as for any error, skips
    that student (no autograded copy, exit status 1) and grades the others; the submitted file
    is only read. (nbformat 3 notebooks have no cell list; nbformat converts them as before.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        logger = getattr(self.log, "logger", self.log)  # a LoggerAdapter wraps a Logger
        logger.addFilter(_ONE_LINE)  # once: addFilter skips a filter already there

    def from_filename(self, filename, resources=None, **kw):
        info = (resources or {}).get("nbgrader", {})
        parts = [info.get("student"), info.get("assignment")]
        name = "/".join([p for p in parts if p] + [Path(filename).name])
        problem = notebook_problem(Path(filename), name)
        if problem:
            raise SubmissionProblem(problem)
        return super().from_filename(filename, resources, **kw)


def repair(data: dict, released: dict) -> list[str]:
    """Undo what editing in JupyterLab can do to nbgrader's metadata, in place; return notes.

    ``released`` is the notebook as released (its metadata is the reference).

    - a copied exercise or test cell carries the original's metadata: the copy keeps its
      code but is graded as a cell the learner added;
    - a cell whose grade id was edited (a renamed exercise) gets its released metadata back
      when its cell id is that of a released cell; otherwise it is graded as a cell the
      learner added;
    - a locked cell whose metadata was edited gets the released metadata back (nbgrader then
      restores its code, as for any locked cell);
    - a released test cell (locked, graded) missing by grade id is put back as released
      (:func:`_restore_test_cells`): in place of a cell whose grading settings are not the
      lab's (an edited test cell whose grade id and cell id were both changed), or else where
      it belongs; nbgrader then restores its hidden tests and grades it as for anyone;
    - duplicate cell ids (nbformat requires unique ones) are renumbered.
    """
    notes = []
    reference = {_grade_id(c): c["metadata"]["nbgrader"] for c in released["cells"] if _grade_id(c)}
    by_cell_id = {c.get("id"): _grade_id(c) for c in released["cells"] if _grade_id(c)}
    present = {_grade_id(c) for c in data["cells"]}
    seen: set[str] = set()
    ids: set[str] = set()
    strangers: list[_Stranger] = []  # cells with grading settings that are not the lab's
    for index, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict):
            continue
        cell.setdefault("metadata", {})
        grade_id = _grade_id(cell)
        if grade_id is not None and grade_id not in reference:
            original = by_cell_id.get(cell.get("id"))
            if original and original not in present:
                notes.append(
                    f"cell {index + 1} had its grade id changed from {original!r} to "
                    f"{grade_id!r}; it was graded as {original!r}"
                )
                cell["metadata"]["nbgrader"] = dict(reference[original])
                present.add(original)
            else:
                notes.append(
                    f"cell {index + 1} has grade id {grade_id!r}, which is not one of this "
                    "lab's; it was graded as a cell you added"
                )
                if not cell["metadata"]["nbgrader"].get("solution"):
                    strangers.append(_Stranger(cell, len(notes) - 1, index + 1, grade_id))
                del cell["metadata"]["nbgrader"]
            grade_id = _grade_id(cell)
        elif grade_id is None and isinstance(cell["metadata"].get("nbgrader"), dict):
            meta = cell["metadata"]["nbgrader"]
            if any(meta.get(k) for k in ("grade", "solution", "locked")):
                if not meta.get("solution"):
                    strangers.append(_Stranger(cell, None, index + 1, None))
                del cell["metadata"]["nbgrader"]  # grading settings without a grade id
        if grade_id in seen:
            del cell["metadata"]["nbgrader"]
            notes.append(
                f"cell {index + 1} is a copy of {grade_id!r} (with its grading settings); it was "
                "graded as a cell you added, and the first copy as the exercise"
            )
            grade_id = None
        if grade_id in reference:
            seen.add(grade_id)
            if cell["metadata"]["nbgrader"] != reference[grade_id]:
                # A checksum alone is no edit worth a note (nbgrader rewrites it anyway).
                meta, released_meta = cell["metadata"]["nbgrader"], reference[grade_id]
                edited = _settings(meta) != _settings(released_meta)
                if edited and (released_meta.get("locked") or meta.get("locked")):
                    notes.append(
                        f"cell {index + 1} ({grade_id!r}) had its grading settings edited; "
                        "it was graded as released"
                    )
                cell["metadata"]["nbgrader"] = dict(reference[grade_id])
        _unique_id(cell, ids, index)
    _restore_test_cells(data, released, seen, strangers, notes, ids)
    return notes


def _unique_id(cell: dict, ids: set[str], suffix) -> None:
    """Give ``cell`` an id not in ``ids`` (nbformat requires unique ones) and add it there."""
    cell_id = cell.get("id")
    if isinstance(cell_id, str):
        while cell_id in ids:
            cell_id = f"{cell_id}-{suffix}"
        cell["id"] = cell_id
        ids.add(cell_id)


def _settings(meta: dict) -> tuple:
    """What grading reads from a cell's nbgrader metadata (nbgrader itself fills in the
    checksum and cell type on release, so a solution notebook lacks both)."""
    flags = tuple(bool(meta.get(k)) for k in ("grade", "solution", "locked", "task"))
    return (*flags, meta.get("points") if meta.get("grade") else None)


@dataclasses.dataclass
class _Stranger:
    """A cell whose grading settings were not the lab's (see :func:`_restore_test_cells`)."""

    cell: dict
    note: int | None  # index of its note in repair's notes, if it has one
    number: int  # 1-based position in the submitted notebook
    grade_id: str | None


def _is_test_cell(cell: dict) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade") and meta.get("locked") and not meta.get("solution"))


def _restore_test_cells(data, released, seen, strangers, notes, ids) -> None:
    """Put back each released test cell that ``data`` lacks (by grade id), in place.

    The released test cells are the truth. A test cell edited in the notebook's JSON, with
    its grade id and its cell id changed, would otherwise be "a cell you added": its tests
    would not run and its points would wait for a person. The released cell replaces the
    first cell without the lab's grading settings (``strangers``, neither an exercise nor
    restored yet) between the released cells around it, whose note becomes one line saying
    so; without one the released cell goes before the next released cell. nbgrader's
    ``OverwriteCells`` then restores its hidden tests, as for every test cell. (nbgrader's own
    ``OverwriteCells.add_missing_cells`` adds a missing grade cell back but leaves the
    impostor in place and marks the added source; this keeps the notebook as released.)
    """
    cells = data["cells"]
    order = [_grade_id(c) for c in released["cells"]]
    for position, original in enumerate(released["cells"]):
        grade_id = _grade_id(original)
        if grade_id is None or grade_id in seen or not _is_test_cell(original):
            continue
        where = {id(c): i for i, c in enumerate(cells)}
        here = {_grade_id(c): i for i, c in enumerate(cells) if _grade_id(c) in seen}
        before = [here[g] for g in order[:position] if g in here]
        after = [here[g] for g in order[position + 1 :] if g in here]
        low = max(before, default=-1)
        high = min((i for i in after if i > low), default=len(cells))
        restored = nbformat.from_dict(copy.deepcopy(original))  # nbgrader reads attributes
        if isinstance(restored.get("source"), list):  # as on disk; nbformat reads it joined
            restored["source"] = "".join(restored["source"])
        if restored.get("cell_type") == "code":
            restored.update(outputs=[], execution_count=None)
        exercise = original.get("metadata", {}).get("course", {}).get("exercise", grade_id)
        used = next((s for s in strangers if low < where.get(id(s.cell), -1) < high), None)
        if used is not None:
            strangers.remove(used)
            cells[where[id(used.cell)]] = restored
            now = f"is now {used.grade_id!r}" if used.grade_id else "was removed"
            note = (
                f"cell {used.number}: the test cell of exercise {exercise!r} was changed (its "
                f"grade id {grade_id!r} {now}, its cell id edited too); it was graded with the "
                "original test cell"
            )
            if used.note is None:
                notes.append(note)
            else:
                notes[used.note] = note
        else:
            index = high
            cells.insert(index, restored)
            notes.append(
                f"the test cell of exercise {exercise!r} ({grade_id!r}) was missing; the "
                "original test cell was put back"
            )
        seen.add(grade_id)
        _unique_id(restored, ids, "restored")


def _released_notebook(config, info: dict) -> dict | None:
    """The released notebook of this submission (the course's ``notebooks/``), if there."""
    course = config.get("CourseDirectory", {})
    root = Path(course.get("root", ".")).resolve()
    release = course.get("release_directory", "release")
    path = root / release / info["assignment"] / f"{info['notebook']}.ipynb"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class RepairMetadata(NbGraderPreprocessor):
    """:func:`repair` inside ``nbgrader autograde`` (see the module's doc); the notes go to the
    log and into the notebook's metadata (``course_repairs``)."""

    def preprocess(self, nb, resources):
        released = _released_notebook(self.config, resources.get("nbgrader", {}))
        if released is None:
            self.log.warning("cannot find the released notebook: metadata not repaired")
            return nb, resources
        notes = repair(nb, released)
        info = resources.get("nbgrader", {})
        name = "/".join(str(info[k]) for k in ("student", "notebook") if info.get(k))
        for note in notes:  # one line each, naming the submission (nbgrader grades a class)
            self.log.warning("%s: %s%s", name or "submission", REPAIRED, note)
        if notes:
            nb.metadata["course_repairs"] = notes
        return nb, resources


def _without_hidden_tests(source: str) -> str:
    out, hidden = [], False
    for line in source.splitlines(keepends=True):
        if line.strip() == "### BEGIN HIDDEN TESTS":
            hidden = True
        elif line.strip() == "### END HIDDEN TESTS":
            hidden = False
        elif not hidden:
            out.append(line)
    return "".join(out)


class QuietOverwriteCells(OverwriteCells):
    """nbgrader's OverwriteCells, quiet about restoring the hidden tests of an untouched cell."""

    def preprocess_cell(self, cell, resources, cell_index):
        self._untouched = False
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            try:
                source = self.gradebook.find_source_cell(
                    grade_id, self.notebook_id, self.assignment_id
                ).source
            except Exception:  # noqa: BLE001 - nbgrader reports a missing cell itself
                source = None
            if source is not None and cell.source.strip() == _without_hidden_tests(source).strip():
                self._untouched = True
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name, attr, old, new):
        if attr == "checksum":
            if not getattr(self, "_untouched", False):
                self.log.warning("cell %s was edited; it was graded as released", name)
            return
        super().report_change(name, attr, old, new)
