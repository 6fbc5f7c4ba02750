"""Check the course's time budgets on this machine (not part of the test suite: timings on
shared machines are noisy, so they are measured here and reported, never asserted in tests).

    python benchmarks/budgets.py [LAB ...] [--skip-cpu] [--skip-grade]

For each lab it measures
- the wall time of executing the solution notebook top to bottom in the ``cpu`` profile
  (budget: 4 minutes on a 2-core CPU, lab 07 6 minutes; the whole course: 25 minutes), and
- the wall time of ``course_utils grade`` on the solution notebook in the ``smoke`` profile
  (budget: 60 seconds), which includes starting nbgrader and the kernel.
It prints a table and exits with 1 if any budget is exceeded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils import config  # noqa: E402

NOTEBOOK_BUDGET_S = 240
# Lab 07 argues from three seeds, four model families and IsoFLOP curves (issue 22): 6 minutes.
NOTEBOOK_BUDGET_BY_LAB = {"07_decoder_takeover": 360}
COURSE_BUDGET_S = 25 * 60
GRADE_BUDGET_S = 60


def execute_seconds(lab: str) -> float:
    import nbformat
    from nbclient import NotebookClient

    from course_utils.tooling.steady_kernel import SteadyKernelManager

    path = ROOT / "solutions" / lab / f"{lab}.ipynb"
    nb = nbformat.read(path, as_version=4)
    os.environ["COURSE_PROFILE"] = "cpu"
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        kernel_manager_class=SteadyKernelManager,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    return time.perf_counter() - start


def grade_seconds(lab: str) -> tuple[float, str]:
    from course_utils.tooling.grading import grade

    start = time.perf_counter()
    report = grade(ROOT / "solutions" / lab / f"{lab}.ipynb", profile="smoke")
    return time.perf_counter() - start, f"{report.score:g}/{report.max_score:g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", default=list(config.LAB_NAMES))
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--skip-grade", action="store_true")
    args = parser.parse_args()
    over = False
    total = 0.0
    print(f"{'lab':<28} {'cpu run (s)':>12} {'grade smoke (s)':>16} {'score':>8}")
    for lab in args.labs:
        run = execute_seconds(lab) if not args.skip_cpu else float("nan")
        graded, score = grade_seconds(lab) if not args.skip_grade else (float("nan"), "-")
        total += 0 if run != run else run
        flag = ""
        if run > NOTEBOOK_BUDGET_BY_LAB.get(lab, NOTEBOOK_BUDGET_S) or graded > GRADE_BUDGET_S:
            over, flag = True, "  OVER BUDGET"
        print(f"{lab:<28} {run:>12.1f} {graded:>16.1f} {score:>8}{flag}", flush=True)
    if not args.skip_cpu:
        print(f"{'whole course':<28} {total:>12.1f}   (budget {COURSE_BUDGET_S} s)")
        over = over or total > COURSE_BUDGET_S
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
