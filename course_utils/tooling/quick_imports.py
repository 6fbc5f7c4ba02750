"""Leave out jsonschema's one slow optional import in the course's command processes.

nbformat (and so nbgrader, nbclient and every command that reads a notebook) imports
jsonschema. When the package ``rfc3987_syntax`` is installed (``jupyter-events`` pulls it in,
through ``jsonschema[format-nongpl]``), jsonschema imports it at once to check the string
formats "iri" and "iri-reference", and that import compiles about 35 Lark grammars: here it
is 1.3 of the 1.5 CPU seconds that importing jsonschema takes, paid by every process that
reads a notebook (python-jsonschema/jsonschema#1428 asks for it to be imported lazily). No
schema of nbformat, nbgrader or Jupyter uses those formats, and jsonschema treats a format it
cannot check as valid, so :func:`skip_slow_format_checkers` marks the package as absent
before anything imports jsonschema: in ``python -m course_utils`` (and the ``course`` script)
and in the workers of ``autograde --jobs``. It is never called in a learner's kernel.
"""

from __future__ import annotations

import sys

SLOW = "rfc3987_syntax"


def skip_slow_format_checkers() -> bool:
    """Make ``import rfc3987_syntax`` fail in this process unless jsonschema (or the package
    itself) is loaded already; True when it did."""
    if "jsonschema" in sys.modules or SLOW in sys.modules:
        return False
    sys.modules[SLOW] = None  # `import` of a None entry raises ImportError
    return True
