"""The course's command line: ``python -m course_utils COMMAND``.

- ``doctor``: is this machine ready? versions, device, widgets, and how to fix what is missing
- ``build [LAB ...] [--check]``: solution notebooks from their ``.py`` sources (authors)
- ``release [LAB ...] [--check] [--force] [--output DIR]``: student notebooks (instructors)
- ``grade PATH [--lab LAB] [--profile P] [--json] [--fail-under N]``: grade a notebook, never
  changing it; exit 0 whatever the score, unless ``--fail-under N`` (exit 1 below N points)
- ``start [LAB] [--instructor] [JupyterLab options]``: JupyterLab at the course folder, with a
  lab open (default: lab 00); other options (``--port=9000``) go to JupyterLab
- ``student-copy DEST``: the course without solutions and hidden tests, for a class's students
- ``autograde LAB [--jobs N] [--student S ...]``: grade the class's submissions in
  ``submitted/`` in parallel (instructors; each student by its own ``nbgrader autograde``
  process into the one gradebook); exit 1 when a submission could not be graded
- ``classroom setup|roster ...``: a class on one server, JupyterHub + nbgrader's exchange
  (root; see :mod:`course_utils.tooling.classroom`)

Mistakes (unknown lab, missing file, not a notebook) print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import config
from .course_dir import CourseError, find_root


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils", description="LLM architectures, built and compared."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("doctor", help="check that this machine is ready for the course")

    build = sub.add_parser("build", help="build solution notebooks from their .py sources")
    build.add_argument("labs", nargs="*", metavar="LAB")
    build.add_argument("--check", action="store_true", help="write nothing; fail if stale")

    release = sub.add_parser("release", help="regenerate notebooks/ from solutions/")
    release.add_argument("labs", nargs="*", metavar="LAB")
    release.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 and name the drifted notebooks"
    )
    release.add_argument(
        "--force",
        action="store_true",
        help="also replace notebooks that look worked on (after a backup)",
    )
    release.add_argument("--output", type=Path, help="release folder (default: notebooks/)")

    grade = sub.add_parser("grade", help="grade a notebook (never modifies it)")
    grade.add_argument("path", type=Path, help="a notebook, or a lab folder")
    grade.add_argument(
        "--lab",
        choices=config.LAB_NAMES,
        metavar="LAB",
        help="the lab, if the notebook's name does not say",
    )
    grade.add_argument(
        "--profile",
        default="smoke",
        choices=("smoke", "cpu", "gpu"),
        help="settings the notebook runs with (default: smoke, the fastest)",
    )
    grade.add_argument("--json", action="store_true", help="print the report as JSON")
    grade.add_argument(
        "--fail-under",
        type=_points,
        default=0.0,
        metavar="N",
        help="exit with code 1 when the score is below N points (default: 0, never)",
    )

    autograde = sub.add_parser(
        "autograde", help="grade the submissions in submitted/ in parallel (instructors)"
    )
    autograde.add_argument("lab", metavar="LAB")
    autograde.add_argument(
        "--jobs",
        "-j",
        type=_jobs,
        default=None,
        metavar="N",
        help="students graded at once (default: the CPUs this process may use)",
    )
    autograde.add_argument(
        "--student",
        action="append",
        metavar="S",
        help="grade only this student (repeat for several; default: every submission)",
    )

    start = sub.add_parser(
        "start", help="open JupyterLab at the course folder, with a lab in front"
    )
    start.add_argument(
        "lab", nargs="?", default=config.LAB_NAMES[0], metavar="LAB",
        help=f"the lab to open (default: {config.LAB_NAMES[0]})",
    )  # fmt: skip
    start.add_argument(
        "--print-command", action="store_true", help="print the command, start nothing"
    )
    start.add_argument(
        "--instructor",
        action="store_true",
        help="keep nbgrader's instructor tools and JupyterLab's news (hidden for learners)",
    )
    start.epilog = (
        "Other options go to JupyterLab as they are, e.g. --port=9000 --no-browser; as root, "
        "--allow-root is added for you."
    )
    copy = sub.add_parser(
        "student-copy", help="copy the course without solutions/ and hidden tests (for a class)"
    )
    copy.add_argument("dest", type=Path, help="a new or empty folder outside the course")
    classroom = sub.add_parser(
        "classroom", help="a class on one server: `classroom setup`, `classroom roster CSV`"
    )  # dispatched by main() before parsing
    classroom.add_argument("args", nargs=argparse.REMAINDER)
    return parser


_START_OWN = {"--print-command", "--instructor", "-h", "--help"}


def _split_start(argv: list[str]) -> tuple[list[str], list[str]]:
    """``start``'s own arguments, and the options it passes on to JupyterLab.

    An unknown option goes to JupyterLab with the word after it when that word is not an
    option or a lab (``--port 9000``); everything after ``--`` goes to JupyterLab too."""
    own: list[str] = []
    extra: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            extra.extend(argv[index + 1 :])
            break
        if arg in _START_OWN or not arg.startswith("-"):
            own.append(arg)
        else:
            extra.append(arg)
            following = argv[index + 1] if index + 1 < len(argv) else None
            if (
                "=" not in arg
                and following is not None
                and not following.startswith("-")
                and following not in config.LAB_NAMES
            ):
                extra.append(following)
                index += 1
        index += 1
    return own, extra


def _points(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of points, got {text!r}") from None
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"expected 0 or more points, got {text!r}")
    return value


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of jobs, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more jobs, got {text!r}")
    return value


def _check_labs(labs: list[str]) -> None:
    for name in labs:
        if name not in config.LAB_NAMES:
            raise CourseError(f"unknown lab {name!r}; the labs are: {', '.join(config.LAB_NAMES)}")


def main(argv: list[str] | None = None) -> int:
    from .quick_imports import skip_slow_format_checkers

    skip_slow_format_checkers()  # 1.3 CPU s less for every command that reads a notebook
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if argv[:1] == ["start"]:
        own, extra = _split_start(argv[1:])
        argv = ["start", *own]
    if argv[:1] == ["classroom"]:  # its own parser (argparse.REMAINDER drops leading options)
        from .classroom import main as classroom_main

        return classroom_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "doctor":
            from .doctor import report

            return 0 if report() else 1
        if args.command == "build":
            from .authoring import AuthoringError, build

            _check_labs(args.labs)
            try:
                changed = build(find_root(), args.labs, check=args.check)
            except AuthoringError as error:
                raise CourseError(str(error)) from None
            for path in changed:
                print(f"{'stale' if args.check else 'built'}: {path}")
            if args.check and changed:
                print("run `python -m course_utils build` and commit the notebooks")
                return 1
            print("solution notebooks are up to date" if not changed else "done")
            return 0
        if args.command == "release":
            from .release import release

            _check_labs(args.labs)
            root = find_root()
            result = release(
                root, args.labs, output=args.output, check=args.check, force=args.force
            )
            for path in result.changed:
                shown = path.relative_to(root) if path.is_relative_to(root) else path
                print(f"{'drifted' if args.check else 'released'}: {shown}")
            for path in result.backups:
                print(f"backed up your edited notebook to {path}")
            for path in result.kept:
                print(
                    f"kept {path}: it looks worked on (outputs or edited exercises); "
                    "rerun with --force to replace it after a backup"
                )
            if args.check and result.changed:
                print(
                    "notebooks/ differs from the release of solutions/: "
                    "run `python -m course_utils release` and commit"
                )
                return 1
            if not result.changed and not result.kept:
                print("notebooks/ is up to date")
            return 1 if result.kept else 0
        if args.command == "grade":
            from .grading import grade

            report = grade(args.path, lab=args.lab, profile=args.profile)
            print(report.to_json() if args.json else report.render())
            if report.score < args.fail_under:
                print(
                    f"score {report.score:g} is below --fail-under {args.fail_under:g}",
                    file=sys.stderr,
                )
                return 1
            return 0
        if args.command == "autograde":
            from .autograde import autograde

            _check_labs([args.lab])
            runs = autograde(find_root(), args.lab, jobs=args.jobs, students=args.student)
            return 0 if all(run.ok for run in runs) else 1
        if args.command == "start":
            from .start import start

            _check_labs([args.lab])
            return start(
                find_root(),
                args.lab,
                print_only=args.print_command,
                extra=extra,
                instructor=args.instructor,
            )
        if args.command == "student-copy":
            from .student_copy import student_copy

            written = student_copy(find_root(), args.dest)
            print(f"wrote {len(written)} files to {args.dest} (no solutions, no hidden tests)")
            return 0
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 2  # pragma: no cover - argparse rejects unknown commands first


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
