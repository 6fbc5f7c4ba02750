"""A cap on what one cell of a grading kernel may print (issue 21: an output flood).

A cell that prints hundreds of megabytes used to make the whole submission ungradable. The cap
works on both sides:

- in the kernel (:class:`CappedOutStream`, ipykernel's ``outstream_class``, set by
  :mod:`course_utils.tooling.kernel_boot`): once a cell has printed ``$COURSE_OUTPUT_CAP``
  characters (default :data:`DEFAULT_CAP`) to stdout and stderr together, the rest of that
  cell's printing is dropped before it leaves the kernel, with one line saying so; the next
  cell starts afresh;
- in the grader (:meth:`course_utils.tooling.safeguard.GuardedExecute.output`): the same cap
  on what is kept of a cell's outputs, which learner code in the kernel cannot switch off.

So a flood costs at most the time of the cell that prints it (the cell time limit), and the
exercise whose test it breaks, never the other exercises.
"""

from __future__ import annotations

import os

from ipykernel.iostream import OutStream

DEFAULT_CAP = 1_000_000  # characters per cell: far more than any lab prints
NOTICE = "\n[output cut: this cell printed more than {cap:,} characters; the rest was dropped]\n"


def cap() -> int:
    try:
        return int(os.environ.get("COURSE_OUTPUT_CAP", "") or DEFAULT_CAP)
    except ValueError:
        return DEFAULT_CAP


# Shared by the kernel's stdout and stderr streams: (id of the running request, characters).
_used = {"request": None, "chars": 0, "noticed": False}


class CappedOutStream(OutStream):
    """ipykernel's OutStream, dropping what a cell prints beyond :func:`cap`."""

    def write(self, string):
        if not isinstance(string, str):
            return super().write(string)
        header = self.parent_header or {}
        request = (header.get("header") or {}).get("msg_id")
        if request != _used["request"]:
            _used.update(request=request, chars=0, noticed=False)
        limit = cap()
        room = limit - _used["chars"]
        _used["chars"] += len(string)
        if room >= len(string):
            return super().write(string)
        if room > 0:
            super().write(string[:room])
        if not _used["noticed"]:
            _used["noticed"] = True
            super().write(NOTICE.format(cap=limit))
        return len(string)
