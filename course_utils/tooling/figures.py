"""Figures a lab's prose marks as measured, checked against what the notebook prints.

A lab argues from numbers it computes when it runs. Where the prose still quotes a number
that a run produces (a count, a time, a percentage), the author marks it, right after the
number, with an HTML comment that no reader sees::

    The model is 55<!-- measured --> times more likely to ...
    Training took about 40 s<!-- measured ±25% --> on a 2-core laptop.

When the test suite executes the solution notebook (nbval, in the ``cpu`` profile, see
``solutions/conftest.py``), every marked figure must appear among the numbers the notebook
printed: as printed (``55``, ``9,000`` and ``9000`` are the same), or, with ``±N%``, any
printed number within N percent. So a figure that the run stops producing fails the suite
instead of silently going stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = r"[-+−]?\d[\d,]*(?:\.\d+)?"
MARK = re.compile(
    rf"(?P<figure>{_NUMBER})(?P<unit>[^\d<\n]{{0,12}}?)"
    r"<!--\s*measured(?:\s*±\s*(?P<tolerance>\d+(?:\.\d+)?)\s*%)?\s*-->"
)
_BARE_MARK = re.compile(r"<!--\s*measured\b[^>]*-->")
NUMBER = re.compile(_NUMBER)


@dataclass(frozen=True)
class Figure:
    text: str  # as written in the prose, e.g. "9,000"
    tolerance: float | None  # relative, e.g. 0.25 for ±25%; None: as printed
    cell: int  # index of the markdown cell

    @property
    def value(self) -> float:
        return float(_plain(self.text))


def _plain(text: str) -> str:
    return text.replace(",", "").replace("−", "-").lstrip("+")


def measured_figures(cells: list[tuple[str, str]]) -> tuple[list[Figure], list[str]]:
    """The figures marked as measured in markdown cells (cell type, source), and problems:
    a ``<!-- measured -->`` mark with no number right before it."""
    figures: list[Figure] = []
    problems: list[str] = []
    for index, (kind, source) in enumerate(cells):
        if kind != "markdown":
            continue
        found = list(MARK.finditer(source))
        for match in found:
            tolerance = match["tolerance"]
            figures.append(
                Figure(match["figure"], float(tolerance) / 100 if tolerance else None, index)
            )
        if len(_BARE_MARK.findall(source)) > len(found):
            problems.append(
                f"cell {index}: a <!-- measured --> mark does not follow a number "
                "(write it right after the figure, e.g. 55<!-- measured -->)"
            )
    return figures, problems


def printed_numbers(outputs_text: str) -> list[str]:
    return [_plain(n) for n in NUMBER.findall(outputs_text)]


def check(cells: list[tuple[str, str]], outputs_text: str) -> list[str]:
    """One line per marked figure the outputs do not contain (empty when all are there)."""
    figures, problems = measured_figures(cells)
    printed = printed_numbers(outputs_text)
    values = []
    for text in printed:
        try:
            values.append(float(text))
        except ValueError:
            continue
    for figure in figures:
        if figure.tolerance is None:
            ok = _plain(figure.text) in printed
            how = "as printed"
        else:
            target = figure.value
            ok = any(abs(v - target) <= figure.tolerance * abs(target) for v in values)
            how = f"within ±{figure.tolerance:.0%}"
        if not ok:
            problems.append(
                f"cell {figure.cell}: the prose says {figure.text} (marked as measured), but "
                f"the run printed no such number ({how}); print it from the cell, update it, "
                "or hedge it"
            )
    return problems


def output_text(outputs: list) -> str:
    """The text a list of notebook outputs shows: streams, plain text, errors."""
    parts = []
    for output in outputs or []:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(str(output.get("text", "")))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            parts.append(str(data.get("text/plain", "")))
            parts.append(str(data.get("text/markdown", "")))
        elif kind == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "\n".join(parts)
