"""How PyTorch's threads behave when several course kernels share a small machine.

    python benchmarks/threads.py [--steps 30] [--copies 1 2 4]

Runs lab 03's training (its ``cpu`` profile: 12 pre-norm blocks of width 64, batches of
16 x 32 characters) in 1, 2 and 4 copies at once, as on a classroom server where several
kernels share the cores, and compares the time they take together with the time one copy
takes alone, times the number of copies (the same work one after another). It does this with
OpenMP's default wait policy and with ``OMP_WAIT_POLICY=PASSIVE``, each copy using the
threads ``course_utils`` chooses (``settings()`` calls ``apply_threads``). The one-copy row
is the quiet-machine cost of passive waiting.

Each copy starts, imports torch and builds its model, then waits until every copy is ready,
so that only training is timed. Not part of the test suite: timings on shared machines are
noisy, so they are measured and reported, never asserted. Say what ``uptime`` showed when you
quote the numbers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(steps: int) -> None:
    """One copy: build lab 03's model, say "ready", wait for "go", train, print seconds."""
    sys.path.insert(0, str(ROOT))
    import torch
    import torch.nn.functional as F
    from torch import nn

    import course_utils
    from course_utils import data
    from course_utils.layers import TransformerBlock
    from course_utils.tokenizers import CharTokenizer

    course_utils.seed_everything(0)  # also applies the course's thread count
    d_model, n_layers, block, batch = 64, 12, 32, 16  # lab 03's cpu profile
    text = data.load_corpus()[:200_000]
    tokenizer = CharTokenizer.train(text)
    ids = torch.tensor(tokenizer.encode(text))

    class TinyLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(tokenizer.vocab_size, d_model)
            self.pos = nn.Embedding(block, d_model)
            self.blocks = nn.ModuleList(
                TransformerBlock(d_model, 4, 4 * d_model) for _ in range(n_layers)
            )
            self.head = nn.Linear(d_model, tokenizer.vocab_size)

        def forward(self, x):
            h = self.tok(x) + self.pos(torch.arange(x.size(1)))
            for b in self.blocks:
                h = b(h, is_causal=True)
            return self.head(h)

    model = TinyLM()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    print(f"ready threads={torch.get_num_threads()}", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    for _ in range(steps):
        x, y = data.get_batch(ids, batch, block, generator=gen)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"seconds {time.perf_counter() - start:.3f}", flush=True)


def run_copies(copies: int, steps: int, passive: bool) -> tuple[float, int]:
    """Start ``copies`` workers, release them together; wall seconds and their thread count."""
    env = dict(os.environ, COURSE_PROFILE="cpu", PYTHONPATH=str(ROOT))
    env.pop("OMP_WAIT_POLICY", None)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(steps)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(copies)
    ]
    threads = 0
    for proc in procs:
        line = proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"a worker failed to start: {line!r}")
        threads = int(line.split("=")[1])
    start = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0 or "seconds" not in out:
            raise RuntimeError(f"a worker failed: {out!r}")
    return time.perf_counter() - start, threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="training steps per copy")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker)
        return 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(
        f"{os.cpu_count()} CPUs; load average before: {load}; {args.steps} steps per copy",
        flush=True,
    )
    results: dict[tuple[bool, int], float] = {}
    threads = {}
    for passive in (False, True):
        for copies in sorted(set([1, *args.copies])):
            results[passive, copies], threads[passive] = run_copies(copies, args.steps, passive)
            policy = "PASSIVE" if passive else "default"
            print(f"  {policy}, {copies} at once: {results[passive, copies]:.1f} s", flush=True)
    print()
    print(
        f"{'OMP_WAIT_POLICY':<16} {'copies':>6} {'together s':>11} {'one after another s':>20} "
        f"{'ratio':>6}"
    )
    for passive in (False, True):
        alone = results[passive, 1]
        for copies in sorted(set([1, *args.copies])):
            together = results[passive, copies]
            sequential = copies * alone
            name = "PASSIVE" if passive else "default"
            print(
                f"{name:<16} {copies:>6} {together:>11.1f} {sequential:>20.1f} "
                f"{together / sequential:>6.2f}"
            )
    print()
    print(f"threads per copy: default {threads[False]}, PASSIVE {threads[True]}")
    quiet = results[True, 1] / results[False, 1]
    print(f"one copy alone, PASSIVE / default: {quiet:.2f} (the cost of passive waiting)")
    for copies in args.copies:
        if copies > 1:
            gain = results[False, copies] / results[True, copies]
            print(f"{copies} copies at once, default / PASSIVE: {gain:.2f}")
    print(f"load average after: {os.getloadavg() if hasattr(os, 'getloadavg') else None}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
