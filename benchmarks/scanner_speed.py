"""How long the grading scanner takes over a typical cell (target: under 5 ms).

    python benchmarks/scanner_speed.py [--runs 30]

``python -m course_utils grade`` and ``nbgrader autograde`` scan every code cell of a
submission before it runs (``course_utils.tooling.safeguard_scan``), so the scanner's time is
paid once per cell per student. The cell timed here is three of the test suite's legitimate
snippets together (scaled dot-product attention with masks, a multi-head attention module, a
BPE merge loop: 50-80 lines), about the largest cell a lab has. The best of ``--runs`` scans
is compared with the target, so that other load on the machine inflates the median, not the
verdict; the exit code is 1 when even the best scan misses it.

This was a timed unit test until CI, on a loaded machine, measured 6.0 ms for a scan that
takes under 5 ms on a quiet one: timings are measured and reported here, never asserted in
the suite. Say what ``uptime`` showed when you quote the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.005


def typical_cell() -> str:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "tooling")]
    from test_safeguard_scan import LEGITIMATE, _cell

    snippets = dict(LEGITIMATE)
    names = ("attention_with_masks", "multi_head_attention_module", "bpe_merge_loop")
    return "".join(_cell(snippets[name]) for name in names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    source = typical_cell()
    from course_utils.tooling.safeguard_scan import scan_source

    findings = scan_source(source)  # also warms the caches (IPython, builtins tables)
    if findings:
        print(f"the typical cell should scan clean, but: {findings}")
        return 1
    timings = []
    for _ in range(args.runs):
        start = time.perf_counter()
        scan_source(source)
        timings.append(time.perf_counter() - start)
    best, median = min(timings), statistics.median(timings)
    print(
        f"scan of a {len(source.splitlines())}-line cell, {args.runs} runs: best {best * 1e3:.2f}"
        f" ms, median {median * 1e3:.2f} ms (target: best under {TARGET_S * 1e3:.0f} ms;"
        f" load average {os.getloadavg()[0]:.1f})"
    )
    return 0 if best < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
