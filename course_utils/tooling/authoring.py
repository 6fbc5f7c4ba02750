"""Build each lab's nbgrader source notebook from its reviewable text source.

A lab is written as a jupytext percent script, ``solutions/<lab>/<lab>.py``; this module turns
it into ``solutions/<lab>/<lab>.ipynb``, the notebook nbgrader releases to learners. Cell
headers carry the grading metadata in a short form (see CONTRIBUTING.md)::

    # %% exercise="char_tokenizer"                       a solution cell the learner fills in
    # %% test="char_tokenizer" points=2 hint="..." nudge="..."   a test cell for that exercise
    # %% [markdown] answer="risks" points=2              a written answer, graded by hand

Every other cell is locked: nbgrader restores it from the source when grading, so the only
code a learner controls is in exercise cells and in cells they add. Each test cell gets one
first line, ``begin_test(...)`` (see :mod:`course_utils.checks`), written from its header: a
failing check then shows the cell's nudge, or its hint on a second failure, and names the
learner's functions from earlier exercises that the test relies on (found in the exercise's
and the test's code) when their checks fail. The nudges and hints themselves go to
``course_utils/hints/<lab>.json`` (:func:`hints_file`), never into a cell's source. The
build also inserts the Colab setup cell and the launch badges, both generated from
:mod:`course_utils.config`. The output is deterministic (cell ids come from grade ids), so
``build --check`` can tell whether a committed notebook is out of date.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from .. import config

SCHEMA_VERSION = 3
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
_ID = re.compile(r"^[A-Za-z0-9_]+$")
_KEYS = {"exercise", "test", "answer", "points", "hint", "nudge"}


class AuthoringError(ValueError):
    """A lab source breaks a rule of the authoring format; the message names the cell."""


@dataclass
class Built:
    lab: str
    path: Path
    text: str  # the notebook as written to disk


def setup_cell_source() -> str:
    """The first code cell of every notebook.

    Everywhere: a passive OpenMP wait policy before PyTorch loads (unless one is set), so
    that PyTorch's idle threads sleep instead of spinning and a busy machine stays fast.
    On Colab: a shallow clone of the course at the release the notebook comes from
    (:data:`course_utils.config.RELEASE_TAG`; what ``grade`` needs: the solution notebooks and
    nbgrader's settings), this package installed from it, ipywidgets 8's widget manager, and
    the one line that grades the notebook there (:mod:`course_utils.tooling.colab`). When the
    clone or the install fails, the half-made folder is removed (so that running the cell
    again retries) and one line says what to do, instead of a traceback.
    """
    from .colab import GRADE_LINE

    return _SETUP_CELL.format(
        course=config.COLAB_COURSE_DIR,
        tag=config.RELEASE_TAG,
        branch=config.BRANCH,
        url=config.clone_url(),
        issues=config.issues_url(),
        grade_line=GRADE_LINE,
    ).strip()


# Formatted as ruff formats the notebooks' code (a test checks).
_SETUP_CELL = """
# Setup: run this cell first. It lets PyTorch's idle threads sleep instead of spin, so
# a busy machine stays fast. On Google Colab it also fetches the course (about a minute,
# once per session); anywhere else it does nothing more.
import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch is imported

if "google.colab" in sys.modules:
    import shutil
    import subprocess

    course = "{course}"
    url = "{url}"
    release = "{tag}"  # the course as it was when this notebook was released
    if not os.path.isdir(course):
        try:
            shallow = ["git", "clone", "-q", "--depth", "1", "--branch"]
            try:
                quiet = subprocess.DEVNULL
                subprocess.run([*shallow, release, url, course], check=True, stderr=quiet)
            except subprocess.CalledProcessError:  # that release is not published (yet)
                shutil.rmtree(course, ignore_errors=True)
                subprocess.run([*shallow, "{branch}", url, course], check=True)
                print(
                    f"The course's {{release}} is not on GitHub yet: using its newest version "
                    "({branch}), which may differ from this notebook in places.",
                    file=sys.stderr,
                )
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", course], check=True)
        except (OSError, subprocess.CalledProcessError) as error:
            shutil.rmtree(course, ignore_errors=True)  # so that running the cell again retries
            print(
                f"Could not fetch the course {{release}} ({{error}}): check that this runtime is "
                "online, then run this cell again; if it fails again, report it at "
                "{issues}",
                file=sys.stderr,
            )
            raise SystemExit(1) from None
    os.environ["COURSE_ROOT"] = course  # where `grade` finds the course
    from google.colab import output

    output.enable_custom_widget_manager()  # ipywidgets 8 widgets render on Colab
    print("To grade this notebook on Colab, run this line in a new cell:")
    print("    {grade_line}")
"""


def timing_note(lab: str) -> str:
    """How long the lab takes, from the syllabus minutes in :mod:`course_utils.config`."""
    try:
        minutes = config.lab(lab).minutes
    except KeyError:  # not a lab of the course (a scratch source): nothing to state
        return ""
    return (
        f"*This notebook runs top to bottom in about {minutes} minute{'s' if minutes != 1 else ''}"
        " on a 2-core laptop CPU (measured on a quiet machine; when other programs keep the CPU "
        "busy it can take several times longer).*"
    )


def badges(lab: str) -> str:
    path = f"notebooks/{lab}/{lab}.ipynb"
    return f"{config.colab_badge(path)} {config.binder_badge(path)}"


def _nbgrader(**fields) -> dict:
    meta = {
        "grade": False,
        "locked": False,
        "schema_version": SCHEMA_VERSION,
        "solution": False,
        "task": False,
    }
    meta.update(fields)
    return meta


def _check_test_cell(source: str, where: str) -> None:
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise AuthoringError(f"{where}: test cell does not parse: {error}") from None
    if not tree.body:
        raise AuthoringError(f"{where}: test cell is empty")
    last = tree.body[-1]
    # nbgrader gives partial credit when a test cell's last line evaluates to a number, and
    # zero when anything is written to stderr: a test ends with a statement, not a value.
    if isinstance(last, ast.Expr) and not isinstance(last.value, ast.Call):
        raise AuthoringError(
            f"{where}: a test cell must not end with a bare expression "
            "(nbgrader would read its value as a partial score); end with print(...)"
        )
    # Of the checks, only check_raises returns a value (the exception): shown as the cell's
    # output if it comes last.
    if (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and getattr(last.value.func, "id", getattr(last.value.func, "attr", None)) == "check_raises"
    ):
        raise AuthoringError(
            f"{where}: a test cell must not end with a bare check_raises(...), which returns "
            "the exception and would show it as the cell's value; write `_ = check_raises(...)`"
        )


def free_names(source: str) -> set[str]:
    """Names a cell reads from the notebook's namespace: not bound in the cell, not builtins.

    Found with :mod:`symtable`, so names bound anywhere in the cell (imports, assignments,
    loop targets, ``def``/``class``, ``with ... as``, ``except ... as``) count as bound, and
    names read inside the cell's own functions, lambdas and comprehensions are resolved the
    way Python resolves them.
    """
    import builtins
    import symtable

    table = symtable.symtable(source, "<test cell>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    reads = {s.get_name() for s in table.get_symbols() if s.is_referenced()}
    stack = list(table.get_children())
    while stack:
        child = stack.pop()
        stack.extend(child.get_children())
        for symbol in child.get_symbols():
            if symbol.is_global() and symbol.is_referenced():
                reads.add(symbol.get_name())
            if symbol.is_declared_global() and symbol.is_assigned():
                bound.add(symbol.get_name())
    return reads - bound - set(dir(builtins))


def check_test_names(source: str, where: str, exercise_names: set[str]) -> None:
    """Refuse a test cell that reads a name it does not bind itself.

    A test cell runs in the learner's kernel, after the learner's cells: a name it takes from
    the kernel (``check_true`` imported by an earlier cell, a ``TOL`` set above) may have been
    replaced by the learner's code. So a test cell imports or computes everything it uses. The
    only names it may take from the kernel are the learner's own functions and classes, the
    ones defined by exercise cells up to this test (``exercise_names``): those are what it
    tests.
    """
    free = free_names(source) - exercise_names
    if free:
        raise AuthoringError(
            f"{where}: the test cell reads {', '.join(sorted(free))} without binding "
            f"{'it' if len(free) == 1 else 'them'}; import or compute every name a test uses "
            "inside the cell (only the exercises' own functions and classes come from the kernel)"
        )


ANSWER_PLACEHOLDER = "YOUR ANSWER HERE"


def _check_answer_question(previous, source: str, where: str) -> None:
    """Refuse an answer cell whose question would vanish when the lab is released.

    nbgrader's release replaces the whole text of an answer cell with "YOUR ANSWER HERE", so
    the question must stand in the markdown cell above it (as in lab 08), and the answer
    cell holds only the model answer. An answer cell that already carries the placeholder
    was written as "question + placeholder": its question would vanish.
    """
    if ANSWER_PLACEHOLDER in source:
        raise AuthoringError(
            f"{where}: an answer cell is cleared on release, so its question would vanish; "
            f"put the question in the markdown cell above and a model answer here (the "
            f"release writes {ANSWER_PLACEHOLDER!r})"
        )
    above_is_question = (
        previous.cell_type == "markdown"
        and "answer" not in previous.metadata
        and previous.source.strip()
    )
    if not above_is_question:
        raise AuthoringError(
            f"{where}: an answer cell needs its question in a markdown cell right above it "
            f"(the release clears the answer cell itself, so a question there would vanish)"
        )


def _top_level_names(source: str, *, definitions_only: bool = False) -> set[str]:
    """Names a cell binds at its top level: functions, classes (and imports, assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif definitions_only:
            continue
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _used_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _literal(text: str) -> str:
    """A string literal as ruff format writes it: double quotes unless that needs escapes."""
    if '"' in text and "'" not in text:
        return repr(text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def begin_test_line(test_id: str, lab: str, number: int, uses: dict[str, int]) -> str:
    """The first line of a built test cell (formatted as ruff format would).

    It names the test, its lab and its exercise, never the hint: hints stay out of the cells
    a learner reads, in the lab's hint file (:func:`hints_file`).
    """
    args = [_literal(test_id), f"lab={_literal(lab)}", f"exercise={number}"]
    if uses:  # in exercise order (the notebook's JSON stores the metadata's keys sorted)
        ordered = sorted(uses.items(), key=lambda item: (item[1], item[0]))
        args.append("uses={" + ", ".join(f"{_literal(k)}: {v}" for k, v in ordered) + "}")
    call = f"begin_test({', '.join(args)})"
    if len(call) > 100:
        call = "begin_test(\n" + "".join(f"    {a},\n" for a in args) + ")"
    return f"from course_utils.checks import begin_test\n\n{call}\n"


def default_nudge(exercise_source: str) -> str:
    """A nudge for a test whose header has none: the idea, from the exercise's docstring.

    An exercise ``merge`` whose docstring starts "Replace every occurrence of pair by new_id."
    gets "Re-read what `merge` must do (replace every occurrence of pair by new_id) ...": the
    first sentence of the docstring, never code.
    """
    try:
        tree = ast.parse(exercise_source)
    except SyntaxError:
        tree = None
    for node in tree.body if tree else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node) or ""
            first = re.split(r"(?<=[.!?])\s|\n\s*\n", doc.strip(), maxsplit=1)[0]
            first = " ".join(first.split()).rstrip(".")
            if first:
                first = first[0].lower() + first[1:]
                return (
                    f"Re-read what `{node.name}` must do ({first}) and compare the expected "
                    "and the returned values above."
                )
            return (
                f"Re-read what `{node.name}` must do and compare the expected and the "
                "returned values above."
            )
    return "Re-read what the exercise asks and compare the expected and the returned values above."


def hints_file(notebook) -> dict:
    """The lab's hint file (``course_utils/hints/<lab>.json``) from a built notebook.

    ``{"lab": ..., "exercises": {name: {"number", "defines"}}, "tests": {grade id: {"exercise",
    "number", "nudge", "hint"}}}``: what begin_test, ``ready()`` and ``hint(N)`` read at run
    time (:func:`course_utils.exercises.lab_hints`).
    """
    exercises: dict[str, dict] = {}
    tests: dict[str, dict] = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        course = cell.metadata.get("course", {})
        if cell.cell_type == "code" and meta.get("solution") and not meta.get("grade"):
            exercises[meta["grade_id"]] = {
                "number": len(exercises) + 1,
                "defines": sorted(_top_level_names(cell.source, definitions_only=True)),
            }
        elif meta.get("grade") and course:
            tests[meta["grade_id"]] = {
                "exercise": course["exercise"],
                "number": course["number"],
                "nudge": course["nudge"],
                "hint": course["hint"],
            }
    return {"lab": notebook.metadata["course"]["lab"], "exercises": exercises, "tests": tests}


def hints_text(notebook) -> str:
    import json

    return json.dumps(hints_file(notebook), indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def hints_path(root: Path, lab: str) -> Path:
    return Path(root) / "course_utils" / "hints" / f"{lab}.json"


def build_notebook(source_path: Path):
    """Read one lab source and return the nbgrader source notebook (an nbformat node)."""
    import jupytext
    import nbformat

    source_path = Path(source_path)
    lab = source_path.stem
    text = source_path.read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="py:percent")
    if not nb.cells or nb.cells[0].cell_type != "markdown":
        raise AuthoringError(f"{source_path}: the first cell must be the markdown title")

    cells = []
    seen: set[str] = set()
    current_exercise: str | None = None
    tests_of: dict[str, int] = {}
    numbers: dict[str, int] = {}  # exercise name -> its number (1, 2, ... as released)
    defined_by: dict[str, str] = {}  # a top-level name -> the exercise whose cell defines it
    relies_on: dict[str, dict[str, int]] = {}  # exercise -> earlier functions it calls
    exercise_sources: dict[str, str] = {}  # exercise -> its cell's code (for default nudges)
    carries: dict[str, dict[str, int]] = {}  # a locked cell's function -> exercises it calls
    exercise_defs: set[str] = set()  # functions and classes exercise cells define

    def earlier_uses(source: str, exercise: str) -> dict[str, int]:
        found: dict[str, int] = {}
        for used in sorted(_used_names(source)):
            found.update(carries.get(used, {}))
            owner = defined_by.get(used)
            if owner is not None and owner != exercise:
                found[used] = numbers[owner]
                found.update(relies_on.get(owner, {}))
        return dict(sorted(found.items(), key=lambda item: (item[1], item[0])))

    counter = {"markdown": 0, "code": 0, "raw": 0}

    def unique(grade_id: str, where: str) -> str:
        if grade_id in seen:
            raise AuthoringError(f"{where}: grade id {grade_id!r} is used twice")
        seen.add(grade_id)
        return grade_id

    def plain(cell_type: str, source: str, *, locked: bool = True):
        counter[cell_type] += 1
        grade_id = unique(f"{cell_type[:2]}{counter[cell_type]:03d}", "cell")
        maker = {
            "markdown": nbformat.v4.new_markdown_cell,
            "code": nbformat.v4.new_code_cell,
            "raw": nbformat.v4.new_raw_cell,
        }[cell_type]
        cell = maker(source)
        cell.id = grade_id
        cell.metadata = {"nbgrader": _nbgrader(grade_id=grade_id, locked=locked)}
        if cell_type == "code":
            cell.metadata["editable"] = not locked
            cell.metadata["deletable"] = not locked
        return cell

    for index, cell in enumerate(nb.cells):
        where = f"{source_path.name}, cell {index + 1}"
        meta = {k: v for k, v in cell.metadata.items() if k != "lines_to_next_cell"}
        unknown = set(meta) - _KEYS
        if unknown:
            raise AuthoringError(f"{where}: unknown header keys {sorted(unknown)}; use {_KEYS}")
        source = cell.source.strip("\n")

        if index == 0:
            parts = [source, timing_note(lab), badges(lab)]
            title = plain("markdown", "\n\n".join(part for part in parts if part))
            cells.append(title)
            cells.append(plain("code", setup_cell_source()))
            continue

        if "exercise" in meta:
            name = meta["exercise"]
            if cell.cell_type != "code" or not _ID.match(str(name)):
                raise AuthoringError(f"{where}: exercise cells are code cells named [A-Za-z0-9_]")
            if "### BEGIN SOLUTION" not in source or "### END SOLUTION" not in source:
                raise AuthoringError(f"{where}: exercise {name!r} has no ### BEGIN/END SOLUTION")
            new = nbformat.v4.new_code_cell(source)
            new.id = unique(name, where)
            new.metadata = {"nbgrader": _nbgrader(grade_id=name, solution=True)}
            current_exercise = name
            exercise_sources[name] = source
            numbers[name] = len(numbers) + 1
            relies_on[name] = earlier_uses(source, name)
            for bound in _top_level_names(source, definitions_only=True):
                defined_by[bound] = name
            exercise_defs.update(_top_level_names(source, definitions_only=True))
            cells.append(new)
        elif "test" in meta:
            name = meta["test"]
            if cell.cell_type != "code":
                raise AuthoringError(f"{where}: test cells are code cells")
            if name != current_exercise:
                raise AuthoringError(
                    f"{where}: test for {name!r} must follow its exercise cell "
                    f"(the last exercise was {current_exercise!r})"
                )
            points = meta.get("points")
            if not isinstance(points, int) or points <= 0:
                raise AuthoringError(f"{where}: test cells need points=<positive int>")
            if not meta.get("hint"):
                raise AuthoringError(f'{where}: test cells need hint="..." for stuck learners')
            _check_test_cell(source, where)
            check_test_names(source, where, exercise_defs)
            tests_of[name] = tests_of.get(name, 0) + 1
            suffix = "" if tests_of[name] == 1 else f"_{tests_of[name]}"
            grade_id = unique(f"test_{name}{suffix}", where)
            uses = {**relies_on[name], **earlier_uses(source, name)}
            uses = dict(sorted(uses.items(), key=lambda item: (item[1], item[0])))
            first = begin_test_line(grade_id, lab, numbers[name], uses)
            new = nbformat.v4.new_code_cell(f"{first}\n{source}")
            new.id = grade_id
            nudge = meta.get("nudge") or default_nudge(exercise_sources[name])
            if meta.get("nudge") is not None and (
                not isinstance(meta["nudge"], str) or not meta["nudge"].strip()
            ):
                raise AuthoringError(f'{where}: nudge="..." must be a sentence')
            new.metadata = {
                "course": {
                    "exercise": name,
                    "number": numbers[name],
                    "nudge": nudge,
                    "hint": meta["hint"],
                    "uses": uses,
                },
                "editable": False,
                "deletable": False,
                "nbgrader": _nbgrader(grade=True, grade_id=grade_id, locked=True, points=points),
            }
            cells.append(new)
        elif "answer" in meta:
            name = meta["answer"]
            points = meta.get("points")
            if cell.cell_type != "markdown" or not isinstance(points, int) or points <= 0:
                raise AuthoringError(f"{where}: answers are markdown cells with points=<int>")
            _check_answer_question(nb.cells[index - 1], source, where)
            new = nbformat.v4.new_markdown_cell(source)
            new.id = unique(name, where)
            new.metadata = {
                "nbgrader": _nbgrader(grade=True, grade_id=name, solution=True, points=points)
            }
            current_exercise = None
            cells.append(new)
        else:
            if meta:
                raise AuthoringError(f"{where}: {sorted(meta)} only go with exercise/test/answer")
            if cell.cell_type == "code":  # a locked cell that rebinds a name takes it over
                through = earlier_uses(source, "")
                for bound in _top_level_names(source):
                    defined_by.pop(bound, None)
                    carries.pop(bound, None)
                for bound in _top_level_names(source, definitions_only=True):
                    if through:  # e.g. a LayerNorm module that calls the learner's layer_norm
                        carries[bound] = through
            cells.append(plain(cell.cell_type, source))

    notebook = nbformat.v4.new_notebook()
    notebook.cells = cells
    notebook.metadata = {
        "course": {"lab": lab},
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
    }
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    nbformat.validate(notebook)
    return notebook


def notebook_text(notebook) -> str:
    import nbformat

    return nbformat.writes(notebook) + "\n"


def lab_sources(root: Path, labs: list[str] | None = None) -> list[Path]:
    """The ``.py`` sources of the given labs (all labs by default), checked to exist."""
    root = Path(root)
    names = list(labs) if labs else list(config.LAB_NAMES)
    paths = []
    for name in names:
        config.lab(name)  # raises KeyError naming the valid labs
        path = root / "solutions" / name / f"{name}.py"
        if not path.is_file():
            raise FileNotFoundError(f"lab source {path} does not exist")
        paths.append(path)
    return paths


def build(root: Path, labs: list[str] | None = None, *, check: bool = False) -> list[Path]:
    """Build solution notebooks from their sources; return the notebooks that changed.

    With ``check=True`` nothing is written: the return value lists the stale notebooks.
    """
    changed = []
    for source in lab_sources(root, labs):
        notebook = build_notebook(source)
        outputs = {
            source.with_suffix(".ipynb"): notebook_text(notebook),
            hints_path(root, source.stem): hints_text(notebook),
        }
        for target, text in outputs.items():
            old = target.read_text(encoding="utf-8") if target.exists() else None
            if old != text:
                changed.append(target)
                if not check:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text, encoding="utf-8")
    return changed
