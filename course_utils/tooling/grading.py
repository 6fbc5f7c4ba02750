"""``python -m course_utils grade PATH``: grade a notebook exactly as the instructor would.

The learner's notebook is copied into a temporary nbgrader course, autograded there with the
course's settings (safeguard included), and the result is read back: each exercise passed or
failed, the failing test's own message, its hint, and the score. The learner's file is only
read; a checksum taken before and after proves it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import config
from ..checks import prerequisite_note
from .course_dir import CourseError, find_root, read_notebook_json, temporary_course
from .feedback import failure_message
from .nbgrader_steps import check_sources, repair
from .safeguard import describe_flags
from .sandbox import describe, sandbox_problem

STUDENT = "learner"
NOT_DONE = "not done yet"


@dataclass
class TestResult:
    grade_id: str
    exercise: str
    score: float
    max_score: float
    message: str = ""  # the failing test's own message (empty when it passed)
    hint: str = ""  # the detailed hint (in the JSON report; `hint(...)` shows it in a notebook)
    nudge: str = ""  # what the report shows under a real failure: the idea, not the code

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score


@dataclass
class GradeReport:
    notebook: str
    lab: str
    profile: str
    tests: list[TestResult] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)  # written answers, graded by a person
    flags: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what grading repaired before it ran
    isolation: str = ""

    @property
    def score(self) -> float:
        return sum(t.score for t in self.tests)

    @property
    def max_score(self) -> float:
        return sum(t.max_score for t in self.tests)

    def exercises(self) -> dict[str, list[TestResult]]:
        grouped: dict[str, list[TestResult]] = {}
        for test in self.tests:
            grouped.setdefault(test.exercise, []).append(test)
        return grouped

    def to_json(self) -> str:
        data = asdict(self)
        data.update(score=self.score, max_score=self.max_score)
        return json.dumps(data, indent=2)

    def render(self) -> str:
        lines = [f"Graded {self.notebook} (lab {self.lab}, profile {self.profile})", ""]
        width = max((len(name) for name in self.exercises()), default=10)
        for name, tests in self.exercises().items():
            got = sum(t.score for t in tests)
            total = sum(t.max_score for t in tests)
            ok = all(t.passed for t in tests)
            lines.append(
                f"  {'✓ passed' if ok else '✗ failed'}  {name:<{width}}  {got:g}/{total:g}"
            )
            for test in tests:
                if test.passed:
                    continue
                for text in test.message.splitlines()[:6]:
                    lines.append(f"      {text}")
                if test.message.startswith(NOT_DONE) or "Hint:" in test.message:
                    continue  # an untouched placeholder needs no hint
                if test.nudge or test.hint:
                    lines.append(f"      Hint: {test.nudge or test.hint}")
                if test.nudge and test.hint and test.hint != test.nudge:
                    lines.append(
                        f'      (more in the notebook: course_utils.hint("{test.exercise}"))'
                    )
        lines.append("")
        lines.append(f"Score: {self.score:g}/{self.max_score:g} for code exercises.")
        if self.manual:
            lines.append(f"Written answers graded by your instructor: {', '.join(self.manual)}.")
        for note in self.notes:
            lines.append(f"Note: {note}")
        if self.flags:
            lines.append("")
            lines.append(
                "⚠ The grading safeguard flagged this notebook; an instructor will review it:"
            )
            lines.extend(f"  {line}" for line in describe_flags(self.flags).splitlines())
        if self.isolation:
            lines.append(f"Grading isolation: {self.isolation}")
        return "\n".join(lines)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_notebook(path: Path) -> Path:
    """A notebook path, or a lab folder holding ``<lab>.ipynb``."""
    path = Path(path)
    if path.is_dir():
        candidate = path / f"{path.name}.ipynb"
        if path.name in config.LAB_NAMES and candidate.is_file():
            return candidate
        notebooks = sorted(p for p in path.glob("*.ipynb") if not p.name.startswith("."))
        if len(notebooks) == 1:
            return notebooks[0]
        raise CourseError(f"{path}: expected a lab folder holding one notebook")
    return path


def identify_lab(path: Path, data: dict) -> str:
    lab = data.get("metadata", {}).get("course", {}).get("lab")
    for candidate in (lab, path.stem, path.parent.name):
        if candidate in config.LAB_NAMES:
            return candidate
    raise CourseError(
        f"{path}: cannot tell which lab this notebook belongs to; pass --lab "
        f"(one of {', '.join(config.LAB_NAMES)})"
    )


def check_lab(path: Path, data: dict, lab: str, source: dict) -> None:
    """Refuse a notebook of another lab (``--lab`` given wrongly) with one clear line."""
    own = data.get("metadata", {}).get("course", {}).get("lab")
    if own in config.LAB_NAMES and own != lab:
        raise CourseError(f"{path} is a notebook of lab {own}, not {lab}: pass --lab {own}")
    ids = {_exercise_id(c) for c in data["cells"]} - {None}
    expected = {_exercise_id(c) for c in source["cells"]} - {None}
    if ids and not ids & expected:
        raise CourseError(f"{path} does not belong to lab {lab}: none of its cells are that lab's")


def _exercise_id(cell: dict) -> str | None:
    """The grade id of an exercise or test cell (locked cells' ids repeat across labs)."""
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
    if isinstance(meta, dict) and (meta.get("solution") or meta.get("grade")):
        return meta.get("grade_id")
    return None


def _grade_id(cell: dict) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
    return meta.get("grade_id") if isinstance(meta, dict) else None


def _progress_printer(source: dict, lab: str, say: Callable[[str], None]):
    """nbclient's on_cell_execute hook: one line as each exercise of the notebook starts."""
    exercises = [
        c["metadata"]["nbgrader"]["grade_id"]
        for c in source["cells"]
        if c["cell_type"] == "code"
        and c["metadata"].get("nbgrader", {}).get("solution")
        and not c["metadata"]["nbgrader"].get("grade")
    ]
    start = time.monotonic()

    def on_cell_execute(cell, cell_index, **_):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in exercises:
            number = exercises.index(grade_id) + 1
            say(
                f"  [{time.monotonic() - start:4.0f} s] exercise {number} of {len(exercises)} "
                f"({grade_id}) and its tests"
            )

    return on_cell_execute


def _note_prerequisites(tests: list[TestResult], meta: dict[str, dict]) -> None:
    """A failed test whose earlier exercises failed says so (the kernel may not have)."""
    failed = {meta.get(t.grade_id, {}).get("number") for t in tests if not t.passed}
    for test in tests:
        info = meta.get(test.grade_id, {})
        note = prerequisite_note(info.get("uses", {}), failed - {info.get("number")})
        if not test.passed and note and "fix that first" not in test.message:
            test.message = f"{test.message}\n{note}"


def grade(
    path: Path,
    *,
    lab: str | None = None,
    root: Path | None = None,
    profile: str = "smoke",
    progress: Callable[[str], None] | None = None,
) -> GradeReport:
    """Autograde the notebook at ``path`` (never modified) and return the report.

    ``progress`` receives a line as grading starts and as each exercise starts running;
    by default the lines go to standard error, so that a long grading run is not silent.
    """
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    path = resolve_notebook(Path(path))
    data = read_notebook_json(path)
    lab = lab or identify_lab(path, data)
    try:
        config.lab(lab)
    except KeyError as error:
        raise CourseError(error.args[0]) from None
    root = Path(root).resolve() if root else find_root(path.resolve().parent)
    before = _digest(path)
    source_path = root / "solutions" / lab / f"{lab}.ipynb"
    if not source_path.is_file():
        raise CourseError(f"{source_path} does not exist; run `python -m course_utils build`")
    source = read_notebook_json(source_path)
    check_lab(path, data, lab, source)
    problem = check_sources(data)
    if problem:
        raise CourseError(f"{path}: {problem}")
    hints = {
        c["metadata"]["nbgrader"]["grade_id"]: c["metadata"].get("course", {})
        for c in source["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade")
    }
    report = GradeReport(notebook=str(path), lab=lab, profile=profile, isolation=describe())
    with (
        warnings.catch_warnings(),
        temporary_course(root, [lab], profile=profile) as (
            api,
            course,
        ),
    ):
        # nbgrader's database layer warns about its own session handling; not the learner's.
        warnings.simplefilter("ignore")
        target = course / "submitted" / STUDENT / lab / f"{lab}.ipynb"
        target.parent.mkdir(parents=True)
        released = read_notebook_json(course / "release" / lab / f"{lab}.ipynb")
        report.notes = repair(data, released)
        target.write_text(json.dumps(data), encoding="utf-8")
        api.config.NotebookClient.on_cell_execute = _progress_printer(source, lab, say)
        say(f"Grading {path.name} in a fresh kernel (profile {profile}) ...")
        result = api.autograde(lab, STUDENT, force=True, create=True)
        autograded = course / "autograded" / STUDENT / lab / f"{lab}.ipynb"
        if not result["success"] or not autograded.exists():
            cause = _cause(result)
            if "Kernel died" in cause and not sandbox_problem():
                cause += (
                    " (the grading kernel could not start inside the sandbox; "
                    "`COURSE_SANDBOX=off python -m course_utils grade ...` grades without it, "
                    "and `python -m course_utils doctor` checks this machine)"
                )
            raise CourseError(f"nbgrader could not grade {path}: {cause}")
        graded = json.loads(autograded.read_text(encoding="utf-8"))
        cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): c for c in graded["cells"]}
        with api.gradebook as gb:
            submission = gb.find_submission_notebook(lab, lab, STUDENT)
            for g in sorted(submission.grades, key=lambda g: _order(source, g.name)):
                if g.cell.cell_type != "code":
                    report.manual.append(g.name)
                    continue
                meta = hints.get(g.name, {})
                score = float(g.auto_score or 0)
                test = TestResult(
                    g.name,
                    meta.get("exercise", g.name),
                    score,
                    float(g.max_score),
                    hint=meta.get("hint", ""),
                    nudge=meta.get("nudge", ""),
                )
                if not test.passed:
                    test.message = failure_message(cells.get(g.name, {}))
                report.tests.append(test)
        _note_prerequisites(report.tests, hints)
        report.flags = graded.get("metadata", {}).get("course_safeguard", {}).get("flags", [])
    if _digest(path) != before:  # pragma: no cover - would be a bug in this module
        raise RuntimeError(f"{path} changed while it was graded; please report this bug")
    return report


def _cause(result: dict) -> str:
    """The most telling line of a failed nbgrader run (its own summary lines say nothing)."""
    text = f"{result.get('log') or ''}\n{result.get('error') or ''}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if ("Error" in line or "Exception" in line) and "NbGraderException" not in line:
            if not line.startswith(("File ", "Traceback", "raise ")):
                return line[:300]
    return "see `nbgrader autograde --debug` for details"


def _order(source: dict, grade_id: str) -> int:
    for index, cell in enumerate(source["cells"]):
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            return index
    return len(source["cells"])
