import sys

from .tooling.cli import main


def _wrong_python(error: ModuleNotFoundError) -> int:
    """One clear line when ``python -m course_utils`` runs under a Python without the course's
    packages: most often a terminal whose ``~/.bashrc`` ran ``pyenv init`` or ``conda init``,
    which put another Python first on ``PATH``. Names the Python to use where it can tell."""
    import os
    import shlex
    from pathlib import Path

    args = shlex.join(sys.argv[1:])
    candidates = []
    if os.environ.get("COURSE_PYTHON_BIN"):  # set by `python -m course_utils start`
        candidates.append(Path(os.environ["COURSE_PYTHON_BIN"]) / "python")
    for folder in (Path.cwd(), *Path.cwd().parents):
        candidates += [folder / ".venv" / "bin" / "python", folder / "venv" / "bin" / "python"]
    # (Not resolved: a virtual environment's python is a link to the Python it was made from.)
    here = os.path.abspath(sys.executable)
    use = next((c for c in candidates if c.is_file() and os.path.abspath(c) != here), None)
    print(
        f"course_utils: this Python ({sys.executable}) lacks {error.name!r}, which the course "
        + (
            f"needs; run the course's own Python: {shlex.quote(str(use))} -m course_utils {args}"
            if use
            else "needs; activate the environment you installed the course into (README, "
            "step 1), or install it into this one: python -m pip install -e '.[course]'"
        ),
        file=sys.stderr,
    )
    return 2


try:
    code = main()  # each command imports what it needs (nbformat, nbgrader, torch) when it runs
except ModuleNotFoundError as error:
    if not error.name or error.name.partition(".")[0] == "course_utils":
        raise
    code = _wrong_python(error)
sys.exit(code)
