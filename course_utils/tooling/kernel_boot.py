"""``python -m course_utils.tooling.kernel_boot -f CONNECTION_FILE``: a grading kernel.

Before ipykernel starts (so before any of the learner's code runs), this installs
``__course_checks__`` in builtins: test cells obtain the course's checks through it, never
through ``import`` (see :func:`course_utils.tooling.trusted.rewrite_imports`). Each call builds
a fresh module object from the source of ``course_utils/checks.py`` read here, at start-up,
and runs it with the builtins and the modules it imports as they were at start-up. So a
replaced ``sys.modules`` entry, a patched module attribute (``mock.patch``), a thread that
keeps re-installing a fake module, ``importlib.reload`` or a rewritten file cannot change what
a test cell checks with.

It also caps what one cell may print (:mod:`course_utils.tooling.output_cap`), and keeps the
packages in :data:`NOT_WHILE_GRADING` from loading: the labs use ``transformers`` only in
demonstrations that compare our models with the library's and skip themselves when it is not
installed (``except ImportError``); no exercise or test needs it
(``tests/tooling/test_grading_kernel.py`` checks that), and importing it cost about 1.2 CPU seconds
per submission of labs 04-06, a sixth of their grading.
"""

from __future__ import annotations

import sys

from course_utils.tooling.trusted import install

NOT_WHILE_GRADING = ("transformers",)


class SkipWhileGrading:
    """A ``sys.meta_path`` finder: importing one of ``NOT_WHILE_GRADING`` raises
    ModuleNotFoundError, as if it were not installed."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] in NOT_WHILE_GRADING:
            raise ModuleNotFoundError(
                f"No module named {name!r} (not loaded while grading)", name=name
            )
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, SkipWhileGrading())
    install()
    from course_utils.tooling import call_guard

    call_guard.install()  # after install(): it takes the checks' CheckFailed from there
    del sys.modules["course_utils.tooling.trusted"]  # nothing left to find by name
    from ipykernel import kernelapp

    sys.argv.append("--IPKernelApp.outstream_class=course_utils.tooling.output_cap.CappedOutStream")
    kernelapp.launch_new_instance()
