"""Start a command under a ceiling on address space: ``python -m course_utils.kernel_limits
BYTES -- cmd ...``. Grading uses it to start kernels, so that a runaway allocation fails
with a MemoryError in one cell instead of taking the machine (and the grading run) down."""

import os
import sys


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: python -m course_utils.kernel_limits BYTES -- command ...")
    limit = int(argv[0])
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass  # not enforceable here: run without the ceiling rather than not at all
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
