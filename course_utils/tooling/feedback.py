"""Feedback pages students can use (``nbgrader generate_feedback``, issue 21).

:class:`CourseFeedback` runs after nbgrader's ``GetGrades`` and before the page is written with
the course's template (``templates/course_feedback/course.html.j2``, extending nbgrader's):

- a summary at the top names each exercise with its points, says passed or failed, gives the
  failing check's own message, the test's hint and, when the test relies on an earlier
  exercise whose checks fail, "This uses your `mean_pool` from exercise 3 ... fix that first"
  (the same text ``python -m course_utils grade`` prints, from the same functions);
- hidden tests are not shown: a test cell's code between ``### BEGIN HIDDEN TESTS`` and
  ``### END HIDDEN TESTS`` is replaced by one comment line, and the grader's rewritten
  imports of the checks are shown as the learner's notebook has them;
- an error's traceback keeps only the frames in the learner's own cells: the test cell's
  frame (it would show hidden code) and frames in the course's package or in installed
  packages are dropped, the final ``Error: message`` line stays;
- long lines wrap (the template's CSS).
"""

from __future__ import annotations

import re
from pathlib import Path

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import List

from ..checks import prerequisite_note
from ..exercises import PLACEHOLDER_RE, lab_hints
from .safeguard import ERROR_NAME, META_KEY, describe_flags

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "course_feedback"

_REWRITTEN = re.compile(
    r"^(?P<indent>\s*)\((?P<targets>[^)]*?),?\) = __course_checks__\((?P<names>[^)]*)\)"
    r"  # the grader's own checks$",
    re.M,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Frames in these places are the grader's, not the learner's.
_GRADER_PLACES = ("course_utils", "site-packages", "dist-packages", "/tmp/course-kernel-")


def failure_message(cell: dict) -> str:
    """The most useful one-paragraph reason a test cell failed (from its error output)."""
    for output in cell.get("outputs", []):
        if output.get("output_type") != "error":
            continue
        name, value = output.get("ename", "Error"), str(output.get("evalue", "")).strip()
        if name == "NotImplementedError":
            match = PLACEHOLDER_RE.match(value)
            if match:
                return f"not done yet: exercise {match[1]} ({match[2]}) is still a placeholder"
            return "not done yet: the exercise still raises NotImplementedError()"
        if name in ("CheckFailed", "AssertionError", ERROR_NAME, "KernelDied"):
            return value or name
        if name == "CellTimeoutError" or "Timeout" in name:
            return "took too long and was stopped (an endless loop?)"
        return f"{name}: {value}" if value else name
    return "failed (the test wrote an error)"


def hide_hidden_tests(source: str) -> str:
    """``source`` with each hidden-test region replaced by one comment line."""
    lines, out, hidden = source.splitlines(keepends=True), [], False
    for line in lines:
        stripped = line.strip()
        if stripped == "### BEGIN HIDDEN TESTS":
            hidden = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# (hidden tests: run by the grader, not shown)\n")
            continue
        if stripped == "### END HIDDEN TESTS":
            hidden = False
            continue
        if not hidden:
            out.append(line)
    return "".join(out)


def _unrewrite(source: str) -> str:
    def back(match):
        targets = [t.strip() for t in match["targets"].split(",") if t.strip()]
        names = [n.strip().strip("'\"") for n in match["names"].split(",") if n.strip()]
        listed = ", ".join(n if n == t else f"{n} as {t}" for n, t in zip(names, targets))
        return f"{match['indent']}from course_utils.checks import {listed}"

    return _REWRITTEN.sub(back, source)


def learner_traceback(traceback: list[str], *, test_cell: bool) -> list[str]:
    """The frames of a traceback that are the learner's (see the module's doc)."""
    if len(traceback) < 3:
        return traceback
    head, frames, last = traceback[:2], traceback[2:-1], traceback[-1:]
    if test_cell and frames:
        frames = frames[1:]  # the test cell itself
    kept = [f for f in frames if not any(p in _ANSI.sub("", f) for p in _GRADER_PLACES)]
    return head + kept + last


class CourseFeedback(NbGraderPreprocessor):
    """Prepare an autograded notebook for the course's feedback page (see the module's doc)."""

    # nbconvert hands this to every preprocessor of the feedback exporter.
    display_data_priority = List([]).tag(config=True)

    def preprocess(self, nb, resources):
        exercises: dict[str, dict] = {}
        manual = []
        failed_numbers: set[int] = set()
        tests = []
        # Hints live in the lab's hint file, not in the learner's notebook (exercises.py); a
        # solution notebook's metadata still carries them.
        lab = (nb.metadata.get("course", {}) or {}).get("lab", "")
        hint_file = lab_hints(lab).get("tests", {})
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {}) or {}
            course = cell.metadata.get("course", {}) or {}
            course = {**course, **hint_file.get(meta.get("grade_id"), {})}
            if not meta.get("grade"):
                continue
            score, points = float(meta.get("score") or 0), float(meta.get("points") or 0)
            if cell.cell_type != "code" or meta.get("solution"):
                manual.append(
                    {"grade_id": meta.get("grade_id"), "score": score, "max_score": points}
                )
                continue
            name = course.get("exercise") or meta.get("grade_id")
            number = course.get("number")
            item = exercises.setdefault(
                name,
                {
                    "name": name,
                    "number": number if number is not None else len(exercises) + 1,
                    "score": 0.0,
                    "max_score": 0.0,
                    "tests": [],
                    "messages": [],
                    "notes": [],
                    "nudge": course.get("nudge", ""),
                    "hint": course.get("hint", ""),
                    "passed": True,
                },
            )
            item["score"] += score
            item["max_score"] += points
            item["tests"].append({"grade_id": meta.get("grade_id")})
            passed = score >= points
            tests.append((item, cell, passed, course.get("uses", {}) or {}))
            if not passed:
                item["passed"] = False
                failed_numbers.add(item["number"])
        for item, cell, passed, uses in tests:
            if not passed:
                message = failure_message(cell)
                if message not in item["messages"]:
                    item["messages"].append(message)
                note = prerequisite_note(uses, failed_numbers - {item["number"]})
                if note and note not in item["notes"] and "fix that first" not in message:
                    item["notes"].append(note)
            cell.source = _unrewrite(hide_hidden_tests(cell.source))
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error" and output.get("traceback"):
                    test_cell = bool((cell.metadata.get("nbgrader", {}) or {}).get("grade"))
                    output["traceback"] = learner_traceback(
                        list(output["traceback"]), test_cell=test_cell
                    )
        flags = nb.metadata.get(META_KEY, {}).get("flags", [])
        resources["course_feedback"] = {
            "exercises": sorted(exercises.values(), key=lambda item: item["number"]),
            "manual": manual,
            "flags": describe_flags(flags).splitlines() if flags else [],
            # What grading repaired before it ran (RepairMetadata): a copied cell, an edited
            # grade id or locked cell.
            "repairs": list(nb.metadata.get("course_repairs", [])),
        }
        return nb, resources


def configure_feedback(c) -> None:
    """The course's feedback page in an nbgrader config ``c`` (see the module's doc)."""
    import nbgrader
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    c.GenerateFeedback.preprocessors = [GetGrades, CourseFeedback, CSSHTMLHeaderPreprocessor]
    c.HTMLExporter.template_name = TEMPLATE_NAME
    c.HTMLExporter.template_file = "course.html.j2"  # extends nbgrader's feedback/index.html.j2
    nbgrader_templates = (
        Path(nbgrader.__file__).resolve().parent / "server_extensions" / "formgrader" / "templates"
    )
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(nbgrader_templates)]
