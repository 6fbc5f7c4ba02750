"""The grading safeguard, end to end: a catalogue of ways to cheat nbgrader, each one a tiny
submission (an untouched student notebook plus one extra cell, or one exercise replaced),
must score zero and be flagged with a specific reason; plain nbgrader is shown to be fooled
by the same tricks; and runaway code costs only its own exercise."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from helpers import load, replace_solution, solution_path, student_path, with_extra_cell

from course_utils.tooling.course_dir import temporary_course
from course_utils.tooling.grading import grade

pytestmark = pytest.mark.slow
LAB = "00_start_here"  # the fastest lab; the safeguard does not depend on the lab

# Each technique: (id, the cell a learner adds, the construct the report must name).
TECHNIQUES = [
    (
        "input-transformer",
        "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])",
        "get_ipython",
    ),
    (
        "ast-transformer",
        "import ast\n\n\nclass Gut(ast.NodeTransformer):\n"
        "    def visit_Module(self, node):\n"
        "        return ast.Module(body=[], type_ignores=[])\n\n\n"
        "get_ipython().ast_transformers.append(Gut())",
        "get_ipython",
    ),
    (
        "event-hook",
        "ip = get_ipython()\nip.events.register('post_run_cell', lambda result: None)",
        "get_ipython",
    ),
    (
        "builtins-replaced",
        "import builtins\n\nbuiltins.isinstance = lambda *args: True",
        "builtins",
    ),
    (
        "checks-monkeypatched",
        "import course_utils.checks as checks\n\n"
        "checks.check_tensor = checks.check_equal = checks.check_true = lambda *a, **k: None",
        "check",
    ),
    (
        "checks-setattr",
        "from course_utils import checks\n\nsetattr(checks, 'check_tensor', lambda *a, **k: None)",
        "setattr",
    ),
    (
        "torch-monkeypatched",
        "import torch\n\ntorch.Tensor.__eq__ = lambda self, other: True",
        "__eq__",
    ),
    (
        "sys-modules-fake",
        "import sys\nfrom types import SimpleNamespace\n\n"
        "sys.modules['course_utils.checks'] = SimpleNamespace(check_tensor=print)",
        "sys.modules",
    ),
    ("trace-hook", "import sys\n\nsys.settrace(lambda *args: None)", "settrace"),
    ("hard-exit", "import os\n\nos._exit(0)", "_exit"),
    ("signal-handler", "import signal\n\nsignal.signal(signal.SIGALRM, lambda *a: None)", "signal"),
    ("exec-built-string", "import base64\n\nexec(base64.b64decode('cGFzcw==').decode())", "exec"),
    (
        "getattr-indirect",
        "b = __import__('bui' + 'ltins')\ngetattr(b, 'set' + 'attr')(b, 'len', lambda x: 0)",
        "__import__",
    ),
    ("shell-escape", "!echo fooled", "!echo"),
]

# Tricks inside an exercise: the solution reads the test's expected value, or returns an
# object that equals anything.
EXERCISE_TRICKS = [
    (
        "frame-peek",
        "bigram_counts",
        "import sys\n\n\ndef bigram_counts(ids, vocab_size):\n"
        "    return sys._getframe(1).f_locals['expected']\n",
        "_getframe",
    ),
    (
        "always-equal",
        "bigram_counts",
        "class Anything:\n    def __eq__(self, other):\n        return True\n\n\n"
        "def bigram_counts(ids, vocab_size):\n    return Anything()\n",
        "__eq__",
    ),
]


@dataclass
class Graded:
    code_score: float
    max_code_score: float
    flags: list
    comments: list[str]
    notebook: dict


def _autograde(submissions: dict[str, dict], *, safeguard: bool = True) -> dict[str, Graded]:
    from helpers import ROOT

    results = {}
    with temporary_course(ROOT, [LAB], safeguard=safeguard) as (api, course):
        for student, nb in submissions.items():
            target = course / "submitted" / student / LAB / f"{LAB}.ipynb"
            target.parent.mkdir(parents=True)
            target.write_text(json.dumps(nb))
            outcome = api.autograde(LAB, student, force=True, create=True)
            assert outcome["success"], outcome["log"]
        with api.gradebook as gb:
            for student in submissions:
                sub = gb.find_submission_notebook(LAB, LAB, student)
                graded = json.loads(
                    (course / "autograded" / student / LAB / f"{LAB}.ipynb").read_text()
                )
                results[student] = Graded(
                    sub.code_score,
                    sub.max_code_score,
                    graded["metadata"].get("course_safeguard", {}).get("flags", []),
                    [c.auto_comment or "" for c in sub.comments],
                    graded,
                )
    return results


def graded_cells(notebook: dict) -> dict[str, dict]:
    """The test cells of an autograded notebook, by grade id."""
    return {
        c["metadata"]["nbgrader"]["grade_id"]: c
        for c in notebook["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade")
    }


@pytest.fixture(scope="module")
def catalogue() -> dict[str, Graded]:
    student = load(student_path(LAB))
    submissions = {name: with_extra_cell(student, cell) for name, cell, _ in TECHNIQUES}
    for name, exercise, source, _ in EXERCISE_TRICKS:
        submissions[name] = replace_solution(student, exercise, source)
    submissions["honest-solution"] = load(solution_path(LAB))
    submissions["solution-plus-harmless-cell"] = with_extra_cell(
        load(solution_path(LAB)),
        "import math\n\nprint(math.sqrt(2), pick_device())\n%timeit -n 1 -r 1 sum(range(10))",
        index=12,
    )
    submissions["honest-constructs"] = with_extra_cell(
        load(solution_path(LAB)), HONEST_CONSTRUCTS, index=12
    )
    solution = load(solution_path(LAB))
    own = next(c for c in solution["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    submissions["flag-costs-its-exercise"] = replace_solution(
        solution, "pick_device", "".join(own["source"]) + "\n\nsum = sum([1, 2])\n"
    )
    return _autograde(submissions)


# Honest code the safeguard once flagged (issue 11, section 3): isolation and the grader's
# own checks make those rules unnecessary.
HONEST_CONSTRUCTS = """import inspect
from concurrent.futures import ThreadPoolExecutor

import torch

for name in ("mps", "cuda"):
    backend = getattr(torch.backends, name, None)
    print(name, backend is not None and hasattr(backend, "is_available"))
print(inspect.signature(bigram_counts))


class Point:
    def __init__(self, x):
        self.x = x

    def __hash__(self):
        return hash(self.x)


with ThreadPoolExecutor(2) as pool:
    print(list(pool.map(abs, [-1, 2])), len({Point(1), Point(2)}))
print("next: open 01_tokens_and_embeddings.ipynb")
"""


@pytest.mark.parametrize("name, cell, construct", TECHNIQUES, ids=[t[0] for t in TECHNIQUES])
def test_tampering_cell_scores_zero_and_is_flagged(catalogue, name, cell, construct):
    result = catalogue[name]
    assert result.code_score == 0, f"{name} scored {result.code_score}"
    assert len(result.flags) == 1, result.flags
    flag = result.flags[0]
    assert not flag["solution"]  # an added cell, reported as such
    constructs = " ".join(f["construct"] for f in flag["findings"])
    assert construct in constructs, flag
    assert any("Grading safeguard" in c and "was not run" in c for c in result.comments)


@pytest.mark.parametrize(
    "name, exercise, source, construct", EXERCISE_TRICKS, ids=[t[0] for t in EXERCISE_TRICKS]
)
def test_tricks_inside_an_exercise_are_flagged(catalogue, name, exercise, source, construct):
    result = catalogue[name]
    assert result.code_score == 0
    assert result.flags and result.flags[0]["grade_id"] == exercise
    assert construct in " ".join(f["construct"] for f in result.flags[0]["findings"])


def test_honest_work_is_never_flagged(catalogue):
    for name in ("honest-solution", "solution-plus-harmless-cell"):
        result = catalogue[name]
        assert not result.flags, result.flags
        assert result.code_score == result.max_code_score > 0


def test_honest_constructs_are_not_flagged(catalogue):
    result = catalogue["honest-constructs"]
    assert not result.flags, result.flags
    assert result.code_score == result.max_code_score > 0


def test_a_flag_costs_only_its_own_exercise(catalogue):
    """`sum = sum(...)` at the top level of pick_device's cell is still flagged (test cells
    would see the new `sum`), and says what to change; bigram_counts keeps its 2 points."""
    result = catalogue["flag-costs-its-exercise"]
    assert len(result.flags) == 1 and result.flags[0]["grade_id"] == "pick_device"
    finding = result.flags[0]["findings"][0]
    assert "sum" in finding["construct"] and "my_sum" in finding["reason"]
    assert result.code_score == result.max_code_score - 1 == 2
    assert any("Grading safeguard" in c for c in result.comments)


def test_the_flagged_cell_is_kept_for_review_but_not_run(catalogue):
    cells = catalogue["input-transformer"].notebook["cells"]
    flagged = next(c for c in cells if "safeguard flagged it" in "".join(c["source"]))
    assert "#     get_ipython().input_transformers_cleanup" in "".join(flagged["source"])
    assert any(o.get("ename") == "RuntimeError" for o in flagged["outputs"])


def test_plain_nbgrader_is_fooled_by_the_same_tricks():
    """The control: without the safeguard, one added cell scores full marks for an untouched
    notebook. (The frame peek does not pay even there: hidden tests call the learner's code
    before they compute the expected value.)"""
    student = load(student_path(LAB))
    results = _autograde(
        {"transformer": with_extra_cell(student, TECHNIQUES[0][1])}, safeguard=False
    )
    assert results["transformer"].code_score == results["transformer"].max_code_score > 0


def test_grade_prints_the_reason(tmp_path):
    path = tmp_path / f"{LAB}.ipynb"
    path.write_text(json.dumps(with_extra_cell(load(student_path(LAB)), TECHNIQUES[0][1])))
    report = grade(path)
    text = report.render()
    assert report.score == 0 and report.flags
    assert "flagged" in text and "Cell 3 (a cell you added" in text and "get_ipython" in text


def test_an_endless_loop_costs_only_its_exercise(monkeypatch):
    monkeypatch.setenv("COURSE_CELL_TIMEOUT", "5")
    nb = replace_solution(
        load(solution_path(LAB)),
        "pick_device",
        "def pick_device(prefer=None):\n    while True:\n        pass\n",
    )
    result = _autograde({"looper": nb})["looper"]
    assert result.code_score == result.max_code_score - 1  # pick_device is worth 1 point
    assert not result.flags


def test_an_allocation_larger_than_the_machine_costs_only_its_exercise(monkeypatch):
    # 3 GiB of address space for the kernel: torch needs about 1; the loop wants more.
    monkeypatch.setenv("COURSE_KERNEL_MEMORY_GB", "3")
    nb = replace_solution(
        load(solution_path(LAB)),
        "bigram_counts",
        "import os\n\nimport torch\n\n\ndef bigram_counts(ids, vocab_size):\n"
        "    memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')\n"
        "    try:\n        torch.ones(2 * memory, dtype=torch.uint8)\n"
        "    except RuntimeError:\n        pass\n"
        "    chunks = []\n    while True:\n"
        "        chunks.append(torch.ones(2**26))  # 256 MiB at a time\n",
    )
    result = _autograde({"hog": nb})["hog"]
    assert result.code_score == 1  # pick_device still counts; bigram_counts does not
    tests = graded_cells(result.notebook)
    error = next(o for o in tests["test_bigram_counts"]["outputs"] if o["output_type"] == "error")
    assert "memory" in error["evalue"].lower() or error["ename"] == "MemoryError", error


def test_a_dying_kernel_costs_only_the_cells_after_it():
    """Even code the scanner misses cannot stop grading: the kernel segfaults (the scanner is
    off here, so the crash really happens), and the run still finishes with a score."""
    nb = with_extra_cell(
        load(solution_path(LAB)),
        "import faulthandler\n\nfaulthandler._sigsegv()",
        index=9,  # after pick_device's test, before bigram_counts
    )
    result = _autograde({"crash": nb}, safeguard=False)["crash"]
    assert result.code_score == 1  # pick_device ran before the crash; bigram_counts did not
    tests = graded_cells(result.notebook)
    names = [o.get("ename") for o in tests["test_bigram_counts"]["outputs"]]
    assert "KernelDied" in names, tests["test_bigram_counts"]["outputs"]
