"""Run every solution notebook in the ``gpu`` profile and record what happened.

    bash benchmarks/gpu_check.sh OUT [--mode h100|t4|dry] [LAB ...]
    python benchmarks/gpu_check.py OUT [--mode h100|t4|dry] [LAB ...]

Modes:

- ``h100`` (default): a data-centre GPU (H100, H200, A100). Refuses to start without CUDA.
  All labs in the ``gpu`` profile, one after the other, within :data:`H100_BUDGET_S`
  (8 minutes) in all (``--budget`` changes it): a cell still running when the budget is spent
  is stopped and recorded as a timeout (each cell gets at least a minute), and the next lab
  starts, so the command ends in about the budget plus a minute per lab left.
- ``t4``: the way Colab's free tier runs them: a T4's 15 GiB of GPU memory (on a bigger GPU
  the process is held to that with ``torch.cuda.set_per_process_memory_fraction``) and two
  CPU threads (Colab's free tier has 2 vCPUs), each lab in its own fresh kernel as a learner
  would open it.
- ``dry``: no GPU; CUDA is hidden (``CUDA_VISIBLE_DEVICES=``), the ``gpu`` profile is forced
  and ``COURSE_MAX_STEPS`` (default 2) caps every training loop, and with it the evaluation
  loops (batches, a timing's repeats, seeds beyond two; :mod:`course_utils.profiles`): the
  models and data at their real ``gpu`` sizes, one or two optimisation steps each. The suite
  runs this mode (tests/tooling/test_gpu_profile.py).

For each lab, OUT receives ``<lab>.txt``: every line the notebook printed (the numbers its
prose relies on are among them), then a last line with its peak memory; and ``summary.json``
and ``summary.md``: per lab its wall time, whether it ran to the end, the error (exception,
message and the cell that raised it) and the peak memory (GPU: ``torch.cuda``'s peak; CPU:
the kernel's peak resident memory). It exits with 1 when a lab failed or the time budget was
exceeded, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_utils import config  # noqa: E402

H100_BUDGET_S = 8 * 60  # all labs, on an H100 or H200
T4_MEMORY_GIB = 15.0  # a T4 has 16 GB, of which PyTorch can use about 15 GiB
T4_THREADS = 2  # Colab's free tier: 2 vCPUs
DRY_MAX_STEPS = 2
CELL_TIMEOUT_S = 1800
MIN_CELL_TIMEOUT_S = 60  # within a budget, the least a cell gets
PEAK_MARK = "gpu_check peak memory:"
CPU_MARK = "gpu_check kernel cpu seconds:"

# Runs before a lab's first cell, in its kernel: the T4 memory limit.
_T4_PRELUDE = f"""
import torch
if torch.cuda.is_available():
    _total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, {T4_MEMORY_GIB} * 2**30 / _total))
"""
# Runs after a lab's last cell, in its kernel: the peak memory, on the device the lab used.
_PEAK = f"""
import resource, sys
import torch
if torch.cuda.is_available():
    print("{PEAK_MARK}", f"cuda {{torch.cuda.max_memory_allocated() / 2**20:.0f}} MiB",
          torch.cuda.get_device_name(0))
else:
    _rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    _rss = _rss / 2**20 if sys.platform == "darwin" else _rss / 2**10  # bytes vs KiB
    print("{PEAK_MARK}", f"cpu {{_rss:.0f}} MiB (peak resident)")
_use = resource.getrusage(resource.RUSAGE_SELF)
print("{CPU_MARK}", f"{{_use.ru_utime + _use.ru_stime:.1f}}")
"""


def mode_env(mode: str, max_steps: int | None = None) -> dict[str, str]:
    """The environment variables a lab's kernel gets in ``mode``."""
    env = {"COURSE_PROFILE": "gpu", "PYTHONUNBUFFERED": "1"}
    if mode == "dry":
        env["CUDA_VISIBLE_DEVICES"] = ""
        env["COURSE_MAX_STEPS"] = str(max_steps or DRY_MAX_STEPS)
    elif max_steps:
        env["COURSE_MAX_STEPS"] = str(max_steps)
    if mode == "t4":
        env["COURSE_THREADS"] = str(T4_THREADS)
        env["OMP_NUM_THREADS"] = str(T4_THREADS)
    return env


def _printed(outputs) -> list[str]:
    """The lines a cell printed. A kernel may send one print in several stream messages
    (unbuffered: "gpu_check peak memory:" and " cpu 482 MiB" apart), so the texts of
    consecutive stream outputs are joined before they are split into lines."""
    lines: list[str] = []
    stream = ""
    for out in outputs:
        if out.get("output_type") == "stream":
            stream += out.get("text", "")
            continue
        lines.extend(stream.splitlines())
        stream = ""
        if out.get("output_type") in ("execute_result", "display_data"):
            text = out.get("data", {}).get("text/plain")
            if text and "image/png" not in out.get("data", {}):
                lines.extend(text.splitlines())
    return lines + stream.splitlines()


def _slowest_cells(cells, first: int, n: int = 3) -> list[dict]:
    """The ``n`` cells that took longest (nbclient's timing metadata), slowest first."""
    from datetime import datetime

    timed = []
    for index, cell in enumerate(cells):
        timing = cell.get("metadata", {}).get("execution", {})
        begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.get("cell_type") != "code" or not begin or not end:
            continue
        seconds = (
            datetime.fromisoformat(end[:26]) - datetime.fromisoformat(begin[:26])
        ).total_seconds()
        head = next((line for line in cell.source.splitlines() if line.strip()), "")
        timed.append({"cell": index - first, "seconds": round(seconds, 1), "first_line": head[:80]})
    return sorted(timed, key=lambda t: -t["seconds"])[:n]


def run_lab(
    lab: str, mode: str, out: Path, max_steps: int | None = None, cell_timeout: float | None = None
) -> dict:
    """Execute ``lab``'s solution notebook in ``mode``; write ``out/<lab>.txt``; return its
    record (lab, ok, wall_s, error, peak, lines)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    from course_utils.tooling.steady_kernel import SteadyKernelManager

    folder = ROOT / "solutions" / lab
    nb = nbformat.read(folder / f"{lab}.ipynb", as_version=4)
    first = 0
    if mode == "t4":
        nb.cells.insert(0, nbformat.v4.new_code_cell(_T4_PRELUDE))
        first = 1
    nb.cells.append(nbformat.v4.new_code_cell(_PEAK))
    saved = {key: os.environ.get(key) for key in mode_env(mode, max_steps)}
    os.environ.update(mode_env(mode, max_steps))
    record: dict = {"lab": lab, "mode": mode, "ok": False, "error": None, "peak": None}
    start = time.perf_counter()
    try:
        client = NotebookClient(
            nb,
            timeout=int(cell_timeout or CELL_TIMEOUT_S),
            kernel_name="python3",
            kernel_manager_class=SteadyKernelManager,
            resources={"metadata": {"path": str(folder)}},
        )
        client.execute()
        record["ok"] = True
    except CellExecutionError:
        failed = next(
            (
                i
                for i, cell in enumerate(nb.cells)
                if any(o.get("output_type") == "error" for o in cell.get("outputs", []))
            ),
            None,
        )
        name = value = ""
        if failed is not None:
            err = next(o for o in nb.cells[failed].outputs if o.get("output_type") == "error")
            name, value = err.get("ename", ""), err.get("evalue", "")
        record["error"] = {
            "cell": None if failed is None else failed - first,  # index in the lab's notebook
            "exception": name,
            "message": value[:2000],
            "source": "" if failed is None else nb.cells[failed].source[:600],
        }
    except Exception as error:  # the kernel died (out of memory), a timeout, ...
        record["error"] = {"cell": None, "exception": type(error).__name__, "message": str(error)}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    record["wall_s"] = round(time.perf_counter() - start, 1)
    try:
        record["slowest_cells"] = _slowest_cells(nb.cells, first)
    except (ValueError, TypeError):  # timing metadata in an unexpected form: not essential
        record["slowest_cells"] = []
    lines = [line for cell in nb.cells for line in _printed(cell.get("outputs", []))]
    peak = [line for line in lines if line.startswith(PEAK_MARK)]
    record["peak"] = peak[-1][len(PEAK_MARK) :].strip() if peak else None
    cpu = [line for line in lines if line.startswith(CPU_MARK)]
    record["kernel_cpu_s"] = float(cpu[-1][len(CPU_MARK) :]) if cpu else None
    record["lines"] = len(lines)
    out.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    if record["error"]:
        e = record["error"]
        text += f"ERROR in cell {e['cell']}: {e['exception']}: {e['message']}\n"
    (out / f"{lab}.txt").write_text(text, encoding="utf-8")
    return record


def summarise(records: list[dict], mode: str, budget_s: float | None, device: str) -> str:
    total = sum(r["wall_s"] for r in records)
    rows = [
        f"# gpu_check, mode {mode}, on {device}",
        "",
        f"total wall time {total:.1f} s" + (f" (budget {budget_s:.0f} s)" if budget_s else ""),
        "",
        "| lab | wall (s) | kernel CPU (s) | result | peak memory |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    for r in records:
        e = r["error"]
        result = "ok" if r["ok"] else f"{e['exception']} in cell {e['cell']}: {e['message'][:120]}"
        cpu = "?" if r["kernel_cpu_s"] is None else f"{r['kernel_cpu_s']:.1f}"
        rows.append(f"| {r['lab']} | {r['wall_s']:.1f} | {cpu} | {result} | {r['peak'] or '?'} |")
    rows += ["", "Slowest cells (index in the lab's notebook, seconds, first line):", ""]
    for r in records:
        cells = "; ".join(
            f"{c['cell']}: {c['seconds']} s `{c['first_line']}`" for c in r.get("slowest_cells", [])
        )
        rows.append(f"- {r['lab']}: {cells or '?'}")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the per-lab outputs and the summary")
    parser.add_argument("labs", nargs="*", help="labs to run (default: all)")
    parser.add_argument("--mode", choices=("h100", "t4", "dry"), default="h100")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help=f"cap every training loop (dry: {DRY_MAX_STEPS})",
    )
    parser.add_argument("--budget", type=float, default=None, help="seconds for all labs")
    args = parser.parse_intermixed_args(argv)
    labs = args.labs or list(config.LAB_NAMES)
    for lab in labs:
        config.lab(lab)  # a clear error for a misspelt lab

    import torch

    if args.mode != "dry" and not torch.cuda.is_available():
        print(f"gpu_check: mode {args.mode} needs CUDA and there is none here; use --mode dry")
        return 2
    device = torch.cuda.get_device_name(0) if args.mode != "dry" else "CPU (dry)"
    budget = args.budget or (H100_BUDGET_S if args.mode == "h100" and not args.labs else None)
    print(f"gpu_check: {len(labs)} lab(s), mode {args.mode}, on {device}; output in {args.out}")

    records = []
    started = time.perf_counter()
    for lab in labs:
        # Within a budget, no cell may run past what is left of it (at least a minute), so
        # that one lab that is far too long is recorded as a timeout and the others still run.
        left = (
            None
            if budget is None
            else max(MIN_CELL_TIMEOUT_S, budget - (time.perf_counter() - started))
        )
        record = run_lab(lab, args.mode, args.out, args.max_steps, cell_timeout=left)
        records.append(record)
        status = "ok" if record["ok"] else f"FAILED ({record['error']['exception']})"
        print(
            f"  {lab:<28} {record['wall_s']:>7.1f} s (kernel CPU {record['kernel_cpu_s']} s)"
            f"  {status}  {record['peak'] or ''}",
            flush=True,
        )
        args.out.joinpath("summary.json").write_text(
            json.dumps({"mode": args.mode, "device": device, "labs": records}, indent=1)
        )
    table = summarise(records, args.mode, budget, device)
    args.out.joinpath("summary.md").write_text(table)
    print(table)
    total = sum(r["wall_s"] for r in records)
    over = budget is not None and total > budget
    if over:
        print(f"gpu_check: {total:.0f} s is over the budget of {budget:.0f} s")
    return 1 if over or not all(r["ok"] for r in records) else 0


if __name__ == "__main__":
    sys.exit(main())
