"""The course's nbgrader settings, shared by ``nbgrader_config.py`` and ``course_utils grade``.

Autograding runs the course's safeguard around nbgrader's own steps:

- after nbgrader restores the locked cells, :class:`~course_utils.tooling.safeguard.ScanSubmission`
  reads every cell the learner could edit and neutralises code that reaches into the kernel
  or the grader (see :mod:`course_utils.tooling.safeguard_scan`);
- :class:`~course_utils.tooling.safeguard.GuardedExecute` runs the notebook in a kernel with a
  memory ceiling and per-cell time limits sized by profile, so an infinite loop or a huge
  allocation costs one exercise, not the grading run;
- :class:`~course_utils.tooling.safeguard.ApplyVerdicts` gives zero to the exercises a flagged cell
  could affect and writes the reason where the learner and the instructor will see it.
"""

from __future__ import annotations

import os

from .. import config

# Seconds one cell may run before it is interrupted, by profile. A smoke-profile lab runs in
# a few seconds in total; a cpu-profile training cell takes up to about two minutes.
CELL_TIMEOUT = {"smoke": 30, "cpu": 300, "gpu": 600}


def grading_profile() -> str:
    """Graded notebooks run with ``smoke`` settings unless COURSE_PROFILE says otherwise."""
    return os.environ.get("COURSE_PROFILE", "").strip().lower() or "smoke"


def cell_timeout(profile: str) -> int:
    """Per-cell time limit in seconds: ``$COURSE_CELL_TIMEOUT`` or the profile's default."""
    configured = os.environ.get("COURSE_CELL_TIMEOUT", "").strip()
    if configured:
        return int(configured)
    return CELL_TIMEOUT.get(profile, CELL_TIMEOUT["cpu"])


def quiet_warnings() -> None:
    """nbgrader's database layer warns about its own SQLAlchemy use on every run; an
    instructor can do nothing about it."""
    import warnings

    try:
        from sqlalchemy import exc
    except ImportError:  # pragma: no cover - nbgrader needs SQLAlchemy
        return
    for category in ("SAWarning", "SADeprecationWarning", "MovedIn20Warning"):
        if hasattr(exc, category):
            warnings.filterwarnings("ignore", category=getattr(exc, category))


def configure(c, *, profile: str | None = None, safeguard: bool = True, scan: bool = True) -> None:
    """Apply the course's settings to an nbgrader traitlets config object ``c``.

    ``safeguard=False`` gives plain nbgrader autograding in an unprotected kernel; the test
    suite uses it to show that the tampering it catches would otherwise score marks.
    ``scan=False`` keeps the isolation and the grader's own checks but runs every cell
    (the suite uses it to show that isolation alone holds).
    """
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties,
        CheckCellMetadata,
        ClearOutput,
        ClearSolutions,
        DeduplicateIds,
        IgnorePattern,
        LimitOutput,
        OverwriteKernelspec,
        SaveAutoGrades,
    )

    from .nbgrader_steps import QuietOverwriteCells, RepairMetadata
    from .safeguard import ApplyVerdicts, GuardedExecute, RecordVerdicts, ScanSubmission

    profile = profile or grading_profile()
    c.CourseDirectory.course_id = config.COURSE_ID
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "notebooks"
    # The lab sources (.py) hold the solutions: never copy them into a release.
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "*.py", "feedback"]
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    # ... and then each stub names its exercise: "Exercise 2 (merge): replace this line ...".
    from nbgrader.converters.generate_assignment import GenerateAssignment

    from .nbgrader_steps import NamePlaceholders

    steps = list(GenerateAssignment.class_traits()["preprocessors"].default())
    steps.insert(steps.index(ClearSolutions) + 1, NamePlaceholders)
    c.GenerateAssignment.preprocessors = steps
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

    from .feedback import configure_feedback
    from .nbgrader_steps import install_alembic_head

    install_alembic_head()
    quiet_warnings()
    configure_feedback(c)
    c.Execute.timeout = cell_timeout(profile)
    # The grading kernel is thrown away: kill it at the end instead of asking it to exit and
    # waiting (up to seconds on a busy machine).
    c.Execute.shutdown_kernel = "immediate"
    c.Execute.interrupt_on_timeout = True
    # (nbgrader's Execute always continues after an error: allow_errors is not configurable.)
    # The profile reaches the kernel through its environment (set by GuardedExecute's kernel
    # launcher), never through this process's environment.
    c.GuardedExecute.profile = profile
    c.GuardedExecute.protect = safeguard
    c.ScanSubmission.scan = scan
    scan = [ScanSubmission] if safeguard else []
    verdicts = [ApplyVerdicts] if safeguard else []
    record = [RecordVerdicts] if safeguard else []
    # A submitted file nbgrader cannot read is one line for that student, not a traceback.
    from .nbgrader_steps import CheckedNotebookExporter

    c.Autograde.exporter_class = CheckedNotebookExporter
    c.Autograde.sanitize_preprocessors = [
        ClearOutput,
        RepairMetadata,
        DeduplicateIds,
        OverwriteKernelspec,
        QuietOverwriteCells,
        CheckCellMetadata,
        *scan,
    ]
    c.Autograde.autograde_preprocessors = [
        GuardedExecute,
        *verdicts,
        IgnorePattern,
        ClearMetadataPreprocessor,
        LimitOutput,
        SaveAutoGrades,
        *record,
        AssignLatePenalties,
        CheckCellMetadata,
    ]
