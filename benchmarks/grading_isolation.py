"""Grading time per submission with and without the sandbox, on the same notebook, in one run.

    PYTHONPATH=$PWD python benchmarks/grading_isolation.py [LAB] [ROUNDS]

Grades the lab's solution notebook (default 00_start_here) ROUNDS times (default 2) in each
mode, alternating (fallback, sandbox, fallback, ...) so that other load on the machine hits
both alike, and prints each time and the median per mode. The sandbox mode needs bubblewrap.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from course_utils.tooling import sandbox
    from course_utils.tooling.grading import grade

    lab = sys.argv[1] if len(sys.argv) > 1 else "00_start_here"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    notebook = ROOT / "solutions" / lab / f"{lab}.ipynb"
    modes = {"no sandbox (fallback, integrity checks)": "off", "sandbox (bubblewrap)": "auto"}
    if sandbox.sandbox_problem() and os.environ.get("COURSE_SANDBOX") != "off":
        os.environ["COURSE_SANDBOX"] = "auto"
        if sandbox.sandbox_problem():
            print(f"no sandbox here ({sandbox.sandbox_problem()}): timing the fallback only")
            modes = {"no sandbox (fallback, integrity checks)": "off"}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode, value in modes.items():
            os.environ["COURSE_SANDBOX"] = value
            start = time.perf_counter()
            report = grade(notebook)
            times[mode].append(time.perf_counter() - start)
            assert report.score == report.max_score, report.render()
            print(f"{mode}: {times[mode][-1]:.1f} s", flush=True)
    print(f"uptime: {os.getloadavg()[0]:.1f} load average (1 min)")
    for mode, values in times.items():
        print(f"median {mode}: {statistics.median(values):.1f} s per submission ({lab})")


if __name__ == "__main__":
    main()
