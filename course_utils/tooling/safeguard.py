"""The autograding safeguard: nbgrader preprocessors that keep grading honest.

In nbgrader a learner's code runs in the same kernel as the tests, so one cell can switch the
tests off. These preprocessors, enabled by :func:`course_utils.tooling.nbgrader_setup.configure`:

1. :class:`ScanSubmission` (after nbgrader restored the locked cells) statically reads every
   code cell the learner could edit: exercise cells and cells they added. A cell that
   reaches into the kernel or the grader (see :mod:`course_utils.tooling.safeguard_scan`) is not
   run:
   its code is kept as comments for the instructor, behind a line that raises with the reason.
2. :class:`GuardedExecute` runs the notebook in a kernel with a memory ceiling; a cell that
   runs too long is interrupted, and a kernel that dies costs the cells after it, not the run.
3. :class:`ApplyVerdicts` gives an error that names the flagged cell and construct to the
   tests a flag costs: those of the exercise whose code was not run, and later tests that use
   a name the flagged cell defines (it was not run, so it compromised nothing else). A
   submission that changed the grader's files (see :mod:`course_utils.tooling.sandbox`) scores
   zero everywhere.
4. :class:`RecordVerdicts` writes the same reason into the gradebook's comments.
"""

from __future__ import annotations

import ast
import os
import sys
import textwrap
from pathlib import Path

from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Integer, Unicode

from .call_guard import rewrite_calls, test_variable_findings, test_variables
from .safeguard_scan import scan_source
from .sandbox import (
    PACKAGE_DIR,
    Watch,
    Workspace,
    kernelspec_dirs,
    package_dirs,
    sandboxed,
    startup_dirs,
)
from .trusted import KEY_VARIABLE, rewrite_imports

META_KEY = "course_safeguard"
SECRET_VARIABLE = "COURSE_GRADING_SECRET"  # the instructor's secret for hidden test cases
ERROR_NAME = "FlaggedByGrader"


def _nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {}) or {}


def _first_line(source: str) -> str:
    for line in source.splitlines():
        if line.strip() and not line.strip().startswith("#"):
            return line.strip()[:60]
    return "(empty)"


def describe_flags(flags: list[dict]) -> str:
    """One paragraph per flagged cell, for comments, feedback and ``grade``'s output."""
    parts = []
    for flag in flags:
        if flag.get("tampered"):
            items = "; ".join(f["reason"] for f in flag["findings"])
            parts.append(
                "The submission changed files that grading relies on, so every test scores "
                f"zero until an instructor reviews it: {items}"
            )
            continue
        where = f"exercise {flag['grade_id']!r}" if flag.get("solution") else "a cell you added"
        items = "; ".join(
            f"line {f['line']}: {f['construct']} ({f['reason']})" for f in flag["findings"]
        )
        parts.append(
            f"Cell {flag['cell'] + 1} ({where}, starting `{flag['first_line']}`) was not run "
            f"because it reaches into the notebook kernel or the grader: {items}"
        )
    return "\n".join(parts)


def _neutralised(source: str, findings: list[dict]) -> str:
    reason = "; ".join(f"line {f['line']}: {f['construct']}" for f in findings)
    kept = textwrap.indent(source, "#     ", lambda line: True)
    return (
        "# The grader did not run this cell: the course's safeguard flagged it.\n"
        f"# {reason}\n"
        "# The original code, kept for the instructor to review:\n"
        f"{kept}\n"
        f"raise RuntimeError({('Flagged by the grading safeguard and not run: ' + reason)!r})"
    )


class ScanSubmission(NbGraderPreprocessor):
    """Flag and neutralise learner code that reaches into the kernel or the grader."""

    scan = Bool(True, help="False: only point test cells at the grader's checks").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict):
        info = resources["nbgrader"]
        trusted: dict[str, str] = {}
        with Gradebook(info["db_url"]) as gb:
            try:
                notebook = gb.find_notebook(info["notebook"], info["assignment"])
                trusted = {c.name: c.source for c in notebook.source_cells if c.locked}
                tests = {c.name for c in notebook.grade_cells if c.cell_type == "code"}
            except MissingEntry:
                self.log.warning("safeguard: notebook not in the gradebook; scanning every cell")
                tests = set()
        # Names only the test cells set: a learner's function must not read them (call_guard).
        test_only = test_variables(
            [source for name, source in trusted.items() if name in tests],
            [source for name, source in trusted.items() if name not in tests],
        )
        flags = []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            meta = _nbgrader_meta(cell)
            grade_id = meta.get("grade_id")
            if grade_id in trusted and cell.source == trusted[grade_id]:
                if meta.get("grade") and not meta.get("solution"):
                    # A test cell takes the checks from the grader, not from the kernel's
                    # modules (which the learner's code could have replaced).
                    cell.source = rewrite_imports(cell.source)
                    # ... and calls the learner's code through a guard that notices (and
                    # undoes) a change to the test's inputs (see call_guard).
                    cell.source = rewrite_calls(cell.source)
                continue  # the instructor's own code, restored by OverwriteCells
            if not self.scan:
                continue
            try:
                findings = [
                    {"line": f.line, "construct": f.construct, "reason": f.reason}
                    for f in scan_source(cell.source)
                ] + test_variable_findings(cell.source, test_only)
            except Exception as error:  # noqa: BLE001 - unreadable code is reviewed, not run
                findings = [
                    {
                        "line": 1,
                        "construct": "unscannable code",
                        "reason": f"the safeguard could not read it ({error!r:.80})",
                    }
                ]
            if not findings:
                continue
            flags.append(
                {
                    "cell": index,
                    "grade_id": grade_id,
                    "solution": bool(meta.get("solution")),
                    "first_line": _first_line(cell.source),
                    "findings": findings,
                    "defines": _defined_names(cell.source),
                }
            )
            cell.source = _neutralised(cell.source, findings)
            self.log.warning("safeguard: flagged cell %d: %s", index + 1, findings)
        nb.metadata[META_KEY] = {"flags": flags}
        return nb, resources


def _defined_names(source: str) -> list[str] | None:
    """Names a cell binds at its top level (None when it cannot be parsed: assume any)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name) and isinstance(inner.ctx, (ast.Store, ast.Del)):
                names.add(inner.id)
            elif isinstance(inner, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in inner.names)
    return sorted(names)


def _used_names(source: str) -> set[str] | None:
    """Names a test cell uses but does not bind itself (test cells import what they use)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    own = set(_defined_names(source) or [])
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - own


def _costs(flag: dict, index: int, exercise: str | None, source: str) -> bool:
    """Does the flag cost the test cell at ``index`` (of ``exercise``) its marks?"""
    if flag.get("tampered"):
        return True  # it changed the grader's files: nothing it touched can be trusted
    if flag.get("solution") and flag.get("grade_id") == exercise:
        return True  # the exercise's own code was not run
    if index < flag["cell"]:
        return False
    defines, used = flag.get("defines"), _used_names(source)
    if defines is None or used is None:
        return True
    return bool(used & set(defines))  # the test needs what the flagged cell would define


class _LimitsMixin:
    """Start the kernel under a memory ceiling (POSIX), with the grading profile set, in the
    submission's :class:`~course_utils.tooling.sandbox.Workspace` (sandboxed where possible),
    through :mod:`course_utils.tooling.kernel_boot` (the trusted checks)."""

    course_profile = "smoke"
    course_workspace: Workspace | None = None
    course_environment: dict[str, str] = {}  # noqa: RUF012 - set per grading run, read-only

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        workspace = self.course_workspace
        if workspace is not None and workspace.sandboxed:
            # No network in the sandbox: the kernel's sockets are Unix sockets in its folder.
            self.transport = "ipc"
            self.ip = str(workspace.ipc / "kernel")
            self.connection_file = str(workspace.ipc / "kernel.json")

    @property
    def kernel_spec(self):
        spec = super().kernel_spec
        workspace = self.course_workspace
        if spec is not None and workspace is not None and workspace.sandboxed:
            # A signal to the sandbox would not reach the kernel (its own session and pid
            # namespace); ipykernel interrupts itself on a control message instead.
            spec.interrupt_mode = "message"
        return spec

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = _booted(super().format_kernel_cmd(extra_arguments))
        limit = kernel_memory_limit() or 0
        workspace = self.course_workspace
        env = [f"{k}={v}" for k, v in workspace.environment().items()] if workspace else []
        env += [f"{k}={v}" for k, v in self.course_environment.items()]
        return [
            sys.executable,
            "-m",
            "course_utils.tooling.kernel_limits",
            str(limit),
            self.course_profile,
            *env,
            "--",
            *(workspace.wrap(cmd) if workspace else cmd),
        ]


def grading_key(secret: str, lab: str) -> str:
    """The key a grading kernel gets for one lab's hidden cases: HMAC-SHA256(secret, lab).

    ``secret`` defaults to ``$COURSE_GRADING_SECRET``; empty without one. The kernel never
    sees the course's secret itself, so a key that leaks (printed into a feedback page)
    gives away one lab's cases, not the others'.
    """
    import hashlib
    import hmac

    secret = secret or os.environ.get(SECRET_VARIABLE, "")
    if not secret.strip():
        return ""
    return hmac.new(secret.strip().encode(), lab.encode(), hashlib.sha256).hexdigest()


def _booted(cmd: list[str]) -> list[str]:
    """The kernel command with ipykernel's launcher replaced by the course's boot module."""
    for index in range(len(cmd) - 1):
        if cmd[index] == "-m" and cmd[index + 1] == "ipykernel_launcher":
            return [*cmd[: index + 1], "course_utils.tooling.kernel_boot", *cmd[index + 2 :]]
    raise RuntimeError(
        f"the grading kernel must be ipykernel (python -m ipykernel_launcher), not {cmd!r}"
    )


def kernel_memory_limit() -> int | None:
    """Bytes of address space a grading kernel may use: $COURSE_KERNEL_MEMORY_GB, else 60%
    of physical memory (leaving room for the grader and the rest of the machine)."""
    try:
        import resource  # noqa: F401 - only on POSIX
    except ImportError:
        return None
    configured = os.environ.get("COURSE_KERNEL_MEMORY_GB")
    if configured:
        return int(float(configured) * 2**30)
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return int(physical * 0.6)


def _limited_manager(
    profile: str, workspace: Workspace | None = None, environment: dict[str, str] | None = None
):
    from .steady_kernel import SteadyKernelManager

    class LimitedKernelManager(_LimitsMixin, SteadyKernelManager):
        course_profile = profile
        course_workspace = workspace
        course_environment = dict(environment or {})

    return LimitedKernelManager


class GuardedExecute(Execute):
    """nbgrader's Execute, with a memory ceiling and survival of a dying kernel."""

    profile = Unicode("smoke", help="COURSE_PROFILE for the grading kernel").tag(config=True)
    protect = Bool(True, help="sandbox (or watch) the kernel; False: plain nbgrader").tag(
        config=True
    )
    course_root = Unicode("", help="the course folder whose solutions/ to protect").tag(config=True)
    grading_secret = Unicode(
        "",
        help="the course's secret for hidden test cases (default: $COURSE_GRADING_SECRET); "
        "empty: the tests' own seeds",
    ).tag(config=True)
    max_output_chars = Integer(
        0, help="characters of output kept per cell (0: $COURSE_OUTPUT_CAP or 1,000,000)"
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel_manager_class = _limited_manager(self.profile)
        self._kernel_dead_at: int | None = None
        self._output_used: dict[int, int] = {}

    def _course_paths(self, resources: dict) -> tuple[Path, list[Path], Path | None]:
        """(course root, folders holding solutions, gradebook file) of this grading run."""
        course = self.config.get("CourseDirectory", {})
        root = Path(course.get("root", os.getcwd())).resolve()
        sources = [root / course.get("source_directory", "source"), root / "solutions"]
        if self.course_root:
            sources.append(Path(self.course_root) / "solutions")
        package_root = PACKAGE_DIR.parent
        if (package_root / "solutions").is_dir():
            sources.append(package_root / "solutions")
        db_url = (resources or {}).get("nbgrader", {}).get("db_url", "")
        gradebook = Path(db_url[len("sqlite:///") :]) if db_url.startswith("sqlite:///") else None
        return root, sources, gradebook

    def _key_environment(self, resources: dict | None) -> dict[str, str]:
        """The grading kernel's key for hidden test cases, if the course has a secret."""
        lab = (resources or {}).get("nbgrader", {}).get("assignment") or ""
        key = grading_key(self.grading_secret, lab)
        return {KEY_VARIABLE: key} if key else {}

    def preprocess(self, nb, resources=None, km=None):
        """Run the notebook in a fresh workspace: sandboxed, or watched and restored after."""
        if not self.protect:
            self.kernel_manager_class = _limited_manager(
                self.profile, None, self._key_environment(resources)
            )
            return super().preprocess(nb, resources, km)
        sandbox = sandboxed(self.log)
        root, sources, gradebook = self._course_paths(resources)
        notebook_dir = (resources or {}).get("metadata", {}).get("path") or os.getcwd()
        hidden = [root, Path(notebook_dir), Path.cwd(), *sources]
        if self.course_root:
            hidden.append(Path(self.course_root))
        if (PACKAGE_DIR.parent / "solutions").is_dir():
            hidden.append(PACKAGE_DIR.parent)  # the course folder the package lives in
        workspace = Workspace.create(hidden, sandboxed=sandbox)
        watch = None
        if not sandbox:
            watch = Watch(
                trees=[PACKAGE_DIR, workspace.lib, *sources, *kernelspec_dirs()],
                files=[gradebook] if gradebook else [],
                pth_dirs=startup_dirs(),
                packages=package_dirs(),
            )
        self.kernel_manager_class = _limited_manager(
            self.profile, workspace, self._key_environment(resources)
        )
        self._kernel_dead_at = None
        self._output_used = {}
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            changes = watch.restore() if watch else []
            workspace.remove()
        if changes:
            self.log.warning("safeguard: the submission changed grader files: %s", changes)
            nb.metadata.setdefault(META_KEY, {}).setdefault("flags", []).append(
                {
                    "cell": -1,
                    "grade_id": None,
                    "solution": False,
                    "first_line": "",
                    "tampered": True,
                    "findings": [
                        {
                            "line": 0,
                            "construct": "changed files the grader relies on",
                            "reason": "; ".join(changes[:5])
                            + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
                            + " (undone)",
                        }
                    ],
                }
            )
        return nb, resources

    def output(self, outs, msg, display_id, cell_index):
        """nbclient's output handler, keeping at most the cap of a cell's output (an error,
        the test's verdict, is always kept)."""
        from .output_cap import NOTICE, cap

        limit = self.max_output_chars or cap()
        used = self._output_used.get(cell_index, 0)
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(
            len(v) if isinstance(v, str) else len(str(v))
            for v in (content.get("data") or {}).values()
        )
        if msg.get("msg_type") == "error" or used + size <= limit:
            self._output_used[cell_index] = used + size
            return super().output(outs, msg, display_id, cell_index)
        self._output_used[cell_index] = used + size
        if used <= limit:  # the first output over the cap: say so, once
            outs.append(
                NotebookNode(output_type="stream", name="stdout", text=NOTICE.format(cap=limit))
            )
        return None

    def preprocess_cell(self, cell, resources, index):
        # nbclient's execute_cell is bound to its own coroutine, so recovery lives here, in
        # the per-cell step that nbconvert dispatches through this class.
        from nbclient.exceptions import DeadKernelError

        if self._kernel_dead_at is not None:
            if cell.cell_type == "code":
                cell.outputs = [
                    _error_output(
                        "KernelDied",
                        f"not run: the kernel died while running cell {self._kernel_dead_at + 1}",
                    )
                ]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._kernel_dead_at = index
            cell.outputs = list(cell.get("outputs", [])) + [
                _error_output(
                    "KernelDied",
                    "the kernel died while running this cell (it may have used too much memory "
                    "or exited); the cells after it were not run",
                )
            ]
            return cell, resources


def _error_output(name: str, message: str) -> NotebookNode:
    return NotebookNode(
        output_type="error", ename=name, evalue=message, traceback=[f"{name}: {message}"]
    )


class ApplyVerdicts(NbGraderPreprocessor):
    """Zero the tests a flagged cell could affect, and keep stray stderr from costing marks."""

    def preprocess(self, nb: NotebookNode, resources: dict):
        flags = nb.metadata.get(META_KEY, {}).get("flags", [])
        reason = describe_flags(flags)
        affected: list[str] = []  # exercises (solution cell ids) that a flag costs marks
        exercise = None
        for index, cell in enumerate(nb.cells):
            meta = _nbgrader_meta(cell)
            if meta.get("solution") and meta.get("grade_id"):
                exercise = meta["grade_id"]
            if cell.cell_type != "code" or not meta.get("grade"):
                continue
            outputs = []
            for output in cell.get("outputs", []):
                # nbgrader scores a test cell zero for any stderr output; a library's warning
                # is not a failed test, so show it as ordinary output instead.
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output = NotebookNode(dict(output, name="stdout"))
                outputs.append(output)
            # A flagged cell was not run, so it compromised nothing after it: it costs its
            # own exercise and the tests that need what it defines, not every later test.
            costly = [f for f in flags if _costs(f, index, exercise, cell.source)]
            if costly:
                outputs.append(
                    _error_output(
                        ERROR_NAME,
                        "this test scores zero until an instructor reviews the submission. "
                        + describe_flags(costly),
                    )
                )
                if exercise and exercise not in affected:
                    affected.append(exercise)
            cell.outputs = outputs
        if flags and not affected:
            # Nothing lost marks, but an instructor still reviews it: note it on the exercise
            # nearest before the first flagged cell.
            first = min(f["cell"] for f in flags)
            nearest = None
            for index, cell in enumerate(nb.cells):
                meta = _nbgrader_meta(cell)
                if meta.get("solution") and meta.get("grade_id"):
                    if nearest is None or index <= first:
                        nearest = meta["grade_id"]
            if nearest:
                affected.append(nearest)
        # Later steps of this pass (RecordVerdicts) read this; the notebook's own metadata
        # is cleared before then.
        resources[META_KEY] = {"flags": flags, "affected": affected, "reason": reason}
        return nb, resources


class RecordVerdicts(NbGraderPreprocessor):
    """Write the safeguard's reasons into the gradebook comments of the affected exercises."""

    def preprocess(self, nb: NotebookNode, resources: dict):
        verdict = resources.get(META_KEY) or {}
        if not verdict.get("flags"):
            return nb, resources
        info = resources["nbgrader"]
        text = "Grading safeguard: " + verdict["reason"]
        with Gradebook(info["db_url"]) as gb:
            for grade_id in verdict["affected"]:
                try:
                    comment = gb.find_comment(
                        grade_id, info["notebook"], info["assignment"], info["student"]
                    )
                except MissingEntry:
                    continue
                comment.auto_comment = text
            gb.db.commit()
        return nb, resources
