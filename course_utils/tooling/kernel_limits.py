"""Start a grading kernel.

``python -m course_utils.tooling.kernel_limits BYTES PROFILE [NAME=VALUE ...] -- cmd ...``

Sets ``COURSE_PROFILE`` (and each NAME=VALUE) for the kernel, ``OMP_WAIT_POLICY=PASSIVE``
unless set (idle OpenMP threads must not spin on a shared machine), changes to
``$COURSE_KERNEL_CWD`` when given (the submission's scratch folder) and, where the OS allows
it, sets a ceiling of BYTES on the kernel's address space (0: none), so that a runaway
allocation fails with an error in one cell instead of taking the machine, and the grading run,
down. Then it becomes the kernel (exec); ``cmd`` may be the kernel inside a sandbox.
"""

import os
import sys


def main(argv: list[str]) -> None:
    if len(argv) < 4 or "--" not in argv[2:]:
        raise SystemExit(
            "usage: python -m course_utils.tooling.kernel_limits BYTES PROFILE [NAME=VALUE ...]"
            " -- cmd ..."
        )
    split = argv.index("--", 2)
    limit, profile, cmd = int(argv[0]), argv[1], argv[split + 1 :]
    for pair in argv[2:split]:
        name, _, value = pair.partition("=")
        os.environ[name] = value
    os.environ["COURSE_PROFILE"] = profile
    # The course's secret for hidden test cases stays with the grader: the kernel gets only
    # its key for this lab (COURSE_GRADING_KEY, set by the grader; see checks.hidden_seed).
    os.environ.pop("COURSE_GRADING_SECRET", None)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if os.environ.get("COURSE_KERNEL_CWD"):
        os.chdir(os.environ["COURSE_KERNEL_CWD"])
    if profile == "smoke":
        # Smoke-profile models are tiny: one thread is as fast, and graders often run several
        # kernels at once, where PyTorch's threads would fight over the cores (10x slower).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    if limit > 0:
        try:
            import resource

            _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        except (ImportError, ValueError, OSError):
            pass  # not enforceable here: run without the ceiling rather than not at all
    if os.environ.get("COURSE_KERNEL_LOG") != "1":
        # The kernel's own log lines ("Kernel is running over TCP ...") are noise in a grading
        # report; everything the notebook prints still reaches its outputs.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv[1:])
