"""Per-learner cost of each lab, for sizing a class (README, "Teaching a class").

    nice -n 10 python benchmarks/classroom_sizing.py [LAB ...] [--threads N]

Executes each solution notebook top to bottom in the ``cpu`` profile, in a fresh process under
``/usr/bin/time``, with COURSE_THREADS=N (default 1: the classroom's CPU limit per learner),
and prints, per lab: the peak resident memory of the largest process (the kernel), the CPU
seconds of the run (user + system, kernel included; robust on a busy machine, unlike wall
time), and the wall seconds. From these: learners per core (a lab's CPU seconds spread over a
50-minute session) and per GiB (peak memory of the kernel plus a learner's Jupyter server).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils import config  # noqa: E402

SESSION_S = 50 * 60  # one lab session
SERVER_MIB = 160  # RSS of a jupyterhub-singleuser server, seen while tests/classroom ran

RUN = """
import sys, nbformat
from nbclient import NotebookClient
from course_utils.tooling.steady_kernel import SteadyKernelManager
nb = nbformat.read(sys.argv[1], as_version=4)
where = {"metadata": {"path": sys.argv[2]}}
NotebookClient(nb, timeout=1800, kernel_name="python3", resources=where,
               kernel_manager_class=SteadyKernelManager).execute()
"""


def measure(lab: str, threads: int) -> tuple[float, float, float]:
    """(peak RSS in MiB, CPU seconds, wall seconds) of executing the lab's solution."""
    path = ROOT / "solutions" / lab / f"{lab}.ipynb"
    env = {**os.environ, "COURSE_PROFILE": "cpu", "COURSE_THREADS": str(threads)}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with tempfile.TemporaryDirectory() as scratch, tempfile.NamedTemporaryFile("r") as out:
        subprocess.run(
            ["/usr/bin/time", "-o", out.name, "-f", "%M %U %S %e",
             sys.executable, "-c", RUN, str(path), scratch],
            env=env, check=True, cwd=scratch,
        )  # fmt: skip
        rss_kib, user, system, wall = map(float, out.read().split()[-4:])
    return rss_kib / 1024, user + system, wall


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("labs", nargs="*", default=list(config.LAB_NAMES))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    rows = []
    for lab in args.labs:
        rss, cpu, wall = measure(lab, args.threads)
        rows.append((lab, rss, cpu, wall))
        print(f"{lab}: peak RSS {rss:.0f} MiB, CPU {cpu:.0f} s, wall {wall:.0f} s", flush=True)
    print(f"load average after: {os.getloadavg()}")
    print("\n| lab | peak memory (MiB) | CPU seconds | learners per core | learners per GiB |")
    print("|---|---|---|---|---|")
    for lab, rss, cpu, _wall in rows:
        per_core = SESSION_S / cpu
        per_gib = 1024 / (rss + SERVER_MIB)
        print(f"| {lab} | {rss:.0f} | {cpu:.0f} | {per_core:.0f} | {per_gib:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
