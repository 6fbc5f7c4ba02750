"""Every lab, launched in a real browser: JupyterLab + Chromium, driven with Playwright.

For each lab in ``course_utils.config.LABS`` (new labs are picked up automatically):

- the student notebook opens without an error and its exercises show "YOUR CODE HERE";
- the solution notebook runs top to bottom with Run > Run All Cells (``COURSE_PROFILE=smoke``),
  no cell shows an error, and the lab's widgets render and respond: a slider moved, a text
  typed, a button clicked changes the output next to it, and no widget callback fails;
- the server starts as ``python -m course_utils start`` starts it: its start page shows lab
  00, lab 01 opens from the file browser, and lab 00's grade command works in a terminal;
- a screenshot of each lab goes to ``test-output/browser/``.

The server serves a temporary copy of ``notebooks/`` and the solution notebooks (never the
``.py`` sources). Chromium is Debian's (``apt-get install chromium``); without it these tests
are skipped, except under CI (``CI`` set), where they fail.

Planting a fault, to see these tests fail (test-only; the copies are edited, never the repo)::

    COURSE_BROWSER_PLANT=widget:00_start_here python -m pytest tests/tooling/test_browser.py
    COURSE_BROWSER_PLANT=import:00_start_here python -m pytest tests/tooling/test_browser.py

``widget``: the lab's widget callbacks raise (the widgets still render); ``import``: a cell
imports a missing module. Leave out ``:<lab>`` to plant it in every lab.
``test_checker_catches_a_broken_notebook`` runs a deliberately broken notebook through the
same checks on every run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from course_utils import config
from course_utils.tooling import start

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output" / "browser"
LABS = list(config.LAB_NAMES)
# Debian's, Ubuntu's snap, Homebrew's cask on macOS; COURSE_CHROMIUM names any other.
KNOWN_CHROMIUMS = [
    "/usr/bin/chromium", "/usr/bin/chromium-browser", "/snap/bin/chromium",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
]  # fmt: skip
CHROMIUM = os.environ.get("COURSE_CHROMIUM") or next(
    (path for path in KNOWN_CHROMIUMS if Path(path).exists()), KNOWN_CHROMIUMS[0]
)
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PLANT_ENV = "COURSE_BROWSER_PLANT"

LOAD_TIMEOUT_MS = 90_000  # JupyterLab page + kernel start on a busy 2-core machine
RUN_ALL_TIMEOUT_S = 240  # a smoke-profile lab takes < 60 s; generous, still bounded
WIDGET_TIMEOUT_S = 30  # a widget callback's output must appear within this


# ---------------------------------------------------------------------------------------------
# What each lab's widgets must do. Keyed by lab; a lab not listed gets GENERIC_WIDGETS.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interaction:
    """One thing a learner does to a widget, and what must follow.

    kind: "slider" | "dropdown" | "toggle" | "checkbox" | "button" | "text".
    label: the widget's ``description`` (a button's text); ``None``: the first of its kind.
    value: what to type into a text box.
    changes: the output next to the widget (an ``Output``, ``HTML`` or ``Image`` widget in the
        same cell, else anywhere in the notebook) must change.
    expect: a regular expression that output's text must then match.
    """

    kind: str
    label: str | None = None
    value: str = "the cat sat"
    changes: bool = True
    expect: str | None = None


WIDGETS: dict[str, tuple[Interaction, ...]] = {
    "00_start_here": (
        Interaction("slider", "length:"),
        Interaction("text", "start:", value="e", changes=False),  # read when Sample is pressed
        Interaction("button", "Sample", expect=r"\A\s*e"),  # the sample starts with "e"
    ),
    "01_tokens_and_embeddings": (
        Interaction("slider", "BPE vocab:"),
        Interaction("text", "text:", value="hello world", expect=r"\b11 tokens"),  # 11 chars
    ),
    "02_attention": (
        Interaction("dropdown", "sentence:"),
        Interaction("text", "text:", value="the cat sat on the mat"),
        Interaction("dropdown", "model:"),  # trained / untrained
    ),
    "03_transformer_block": (
        Interaction("dropdown", "preset:"),
        Interaction("slider", "d_model:"),
        Interaction("slider", "n_layers:"),
        Interaction("text", "vocab_size:", value="32000"),
    ),
    "04_encoder_only": (
        Interaction("text", "sentence:", value="the music was never boring", expect=r"positive"),
        Interaction("dropdown", "encoder:"),  # fine-tuned / pretrained only
        Interaction("slider", "neighbours:"),
    ),
    "05_decoder_only": (
        Interaction("slider", "temperature:"),
        Interaction("slider", "top-k:"),
        Interaction("slider", "top-p:"),
        Interaction("text", "prompt:", value="The while", expect=r"\A\s*The while"),  # sample
        Interaction("button", "Sample"),  # a new seed: a new sample
    ),
    "06_encoder_decoder": (
        Interaction("dropdown", "input:"),  # a test date in another format
        Interaction("dropdown", "head:"),  # mean of the heads -> head 0
        Interaction("text", "date:", value="26 novembre 2026"),  # a typed date wins
    ),
    "07_decoder_takeover": (
        Interaction("text", "prompt:", value="date: 3/6/2026 =>"),  # the decoder continues it
    ),
    "08_training_your_own": (
        Interaction("text", "prefix:", value="MEMO 0", expect=r"'MEMO 0' continues"),
        Interaction("dropdown", "model:"),  # fine-tuned / from scratch / deduplicated / corpus
    ),
    "09_modern_decoder": (
        Interaction("slider", "log10 theta:"),  # the rotary angles redraw
        Interaction("dropdown", "model:"),  # KV cache against key/value heads, another model
    ),
}

# For labs not in WIDGETS: try the first widget of each kind that exists; at least one of
# them must change the output, unless the lab has no interactive control (then rendering is
# enough). A lab that renders no widget at all fails: every lab promises one.
GENERIC_WIDGETS = (
    Interaction("slider"),
    Interaction("dropdown"),
    Interaction("toggle"),
    Interaction("checkbox"),
    Interaction("button"),
    Interaction("text"),
)

CONTROL_SELECTORS = {
    "slider": ".widget-slider",
    "dropdown": ".widget-dropdown",
    "toggle": ".widget-toggle-buttons",
    "checkbox": ".widget-checkbox",
    "button": ".widget-button",
    "text": ".widget-text, .widget-textarea",
}
# Widgets that show results: what "the output next to the widget" means.
OUTPUT_SELECTOR = ".widget-output, .widget-html-content, .widget-htmlmath-content, .widget-image"


# ---------------------------------------------------------------------------------------------
# Fixtures: the course copy, the server, the browser.
# ---------------------------------------------------------------------------------------------


def _plant(spec: str, course: Path) -> None:
    """Test-only: break the copied solution notebooks as ``$COURSE_BROWSER_PLANT`` says."""
    kind, _, only = spec.partition(":")
    planted = {
        "import": "import course_utils.planted_missing_module  # planted fault",
        "widget": (
            "# planted fault: the lab's widget callbacks raise (observers and clicks that the\n"
            "# notebook registers, and interact()'s updates; ipywidgets' own ones still work)\n"
            "import ipywidgets as _w\n"
            "def _planted(*args, **kwargs):\n"
            "    raise RuntimeError('planted fault: a widget callback failed')\n"
            "def _lab_callback(f):\n"
            "    owner = type(getattr(f, '__self__', None)).__name__\n"
            "    return getattr(f, '__module__', None) == '__main__' or owner == 'interactive'\n"
            "_observe, _on_click = _w.Widget.observe, _w.Button.on_click\n"
            "_w.Widget.observe = lambda self, handler, *a, **k: _observe(\n"
            "    self, _planted if _lab_callback(handler) else handler, *a, **k)\n"
            "_w.Button.on_click = lambda self, callback, remove=False: _on_click(\n"
            "    self, _planted if _lab_callback(callback) else callback, remove)\n"
        ),
    }
    if kind not in planted or (only and only not in LABS):
        raise ValueError(f"{PLANT_ENV}={spec!r}: use import[:<lab>] or widget[:<lab>]")
    for lab in [only] if only else LABS:
        path = course / "solutions" / lab / f"{lab}.ipynb"
        nb = nbformat.read(path, as_version=4)
        nb.cells.insert(2, nbformat.v4.new_code_cell(planted[kind]))  # after the setup cell
        nbformat.write(nb, path)


def _require_browser() -> None:
    """Skip without Chromium or Playwright; under CI (``$CI`` set), fail instead."""
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(
            f"Chromium ({CHROMIUM}): apt-get install chromium (Debian), snap install chromium "
            "(Ubuntu), brew install --cask chromium (macOS), or set COURSE_CHROMIUM"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package: pip install playwright")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A temporary course folder: notebooks/ and solutions/<lab>/ without the .py sources."""
    _require_browser()  # before starting anything
    course = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "notebooks", course / "notebooks")
    for lab in LABS:
        source = ROOT / "solutions" / lab
        if source.is_dir():
            shutil.copytree(source, course / "solutions" / lab, ignore=shutil.ignore_patterns(
                "*.py", "__pycache__", ".ipynb_checkpoints"))  # fmt: skip
    shutil.copy(ROOT / "nbgrader_config.py", course)  # a course folder, as grade expects
    if os.environ.get(PLANT_ENV):
        _plant(os.environ[PLANT_ENV], course)
    _write_broken_notebook(course / "_checks" / "broken.ipynb")
    return course


def _user_settings(config_dir: Path) -> None:
    settings = {
        # Every cell in the DOM, so that the checks see all outputs and prompts.
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        # No news or update checks (there is no network), no autosave noise.
        "@jupyterlab/apputils-extension/notification": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    }
    for plugin, values in settings.items():
        package, name = plugin.rsplit("/", 1)
        path = config_dir / "lab" / "user-settings" / package / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


@pytest.fixture(scope="module")
def server(course, jupyter_lab, tmp_path_factory):
    config_dir = tmp_path_factory.mktemp("jupyter-config")
    _user_settings(config_dir)
    env = {
        "COURSE_PROFILE": "smoke",
        "COURSE_OFFLINE": "1",
        # The kernel imports this checkout's course_utils, installed or not.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        # As `start` runs it: a terminal's `python` is this one, also after ~/.bashrc has run
        # `pyenv init` (PATH and COURSE_PYTHON_BIN), and OpenMP waits passively. Terminals run
        # bash, most learners' shell, so that this machine's own ~/.bashrc is read.
        **{
            key: value
            for key, value in start.server_environment().items()
            if key in ("PATH", "COURSE_PYTHON_BIN", "OMP_WAIT_POLICY")
        },
        **({"SHELL": shutil.which("bash")} if shutil.which("bash") else {}),
        # grade in the terminal: this test checks paths, not grading's 30 s budget per cell,
        # which a loaded machine can exceed while a kernel imports torch.
        "COURSE_CELL_TIMEOUT": os.environ.get("COURSE_CELL_TIMEOUT", "300"),
    }
    # As `python -m course_utils start` starts it: rooted at the course, lab 00 in front (the
    # fixture sets the root itself).
    root_option, *options = start.lab_arguments(course, LABS[0], {**os.environ, **env})
    assert root_option == f"--ServerApp.root_dir={course.resolve()}"
    lab_server = jupyter_lab(course, config_dir=config_dir, env=env, extra_args=tuple(options))
    yield lab_server
    lab_server.stop()


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(LOAD_TIMEOUT_MS)
    page.page_errors = []  # uncaught JavaScript exceptions
    page.on("pageerror", lambda error: page.page_errors.append(str(error)))
    yield page
    context.close()
    server.shutdown_kernels()


@pytest.fixture(scope="module")
def output_dir() -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


# ---------------------------------------------------------------------------------------------
# The checks, as helpers (the negative test runs the same ones on a broken notebook).
# ---------------------------------------------------------------------------------------------

_ERRORS_JS = r"""
() => {
  // An error output: IPython's traceback, shown by JupyterLab with the stderr mime type, or
  // a widget that failed to render. Warnings (stderr without a traceback) are fine.
  const traceback = /Traceback \(most recent call last\)|^\s*[A-Za-z_.]*(Error|Exception)\b.*$/m;
  const found = [];
  for (const el of document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')) {
    const mime = el.getAttribute('data-mime-type');
    const text = el.innerText || '';
    if (mime === 'application/vnd.jupyter.error' ||
        (mime === 'application/vnd.jupyter.stderr' && traceback.test(text))) {
      found.push(text.slice(-1500));
    }
  }
  for (const el of document.querySelectorAll('.jp-Notebook .jupyter-widgets')) {
    const text = (el.innerText || '').trim();
    if (el.querySelector('.jupyter-widgets-error-widget') ||
        text.startsWith('Error displaying widget')) {
      found.push('widget failed to render: ' + text.slice(0, 500));
    }
  }
  return found;
}
"""

_PROMPTS_JS = """
() => Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt'))
            .map(el => el.textContent.trim())
"""

_SNAPSHOT_JS = """
([el, selector]) => {
  const cell = el.closest('.jp-Cell');
  let outputs = cell ? Array.from(cell.querySelectorAll(selector)) : [];
  if (!outputs.length) outputs = Array.from(document.querySelectorAll('.jp-Notebook ' + selector));
  return {
    html: outputs.map(o => o.innerHTML).join('\\n<!-- next -->\\n'),
    text: outputs.map(o => o.innerText).join('\\n'),
    count: outputs.length,
  };
}
"""


def open_notebook(page, server, path: str) -> None:
    """Open ``path`` in JupyterLab and wait until all its cells show and its kernel is idle."""
    cells = len(nbformat.read(server.root / path, as_version=4).cells)
    page.goto(f"{server.url}/lab/tree/{path}?reset&token={server.token}")
    page.wait_for_function(
        "n => document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell').length >= n",
        arg=cells,
    )
    # The toolbar shows "idle" before the kernel even exists: ask the server instead.
    deadline = time.monotonic() + LOAD_TIMEOUT_MS / 1000
    while not _kernel_ready(server, path):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{path}: no kernel became idle and connected:\n{server.log()[-3000:]}"
            )
        time.sleep(0.25)
    page.wait_for_selector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]')
    dialogs = page.locator(".jp-Dialog")
    if dialogs.count():
        raise AssertionError(f"{path}: a dialog opened on load: {dialogs.first.inner_text()}")


def _kernel_ready(server, path: str) -> bool:
    status, body = server.request("/api/sessions")
    if status != 200:
        return False
    return any(
        session["path"] == path
        and session["kernel"]["execution_state"] == "idle"
        and session["kernel"]["connections"] >= 1
        for session in json.loads(body)
    )


def notebook_errors(page) -> list[str]:
    return page.evaluate(_ERRORS_JS)


def run_all_cells(page, timeout_s: float = RUN_ALL_TIMEOUT_S) -> list[str]:
    """Run > Run All Cells, through the menu; wait until no cell is queued or running.

    Returns the input prompts of the code cells afterwards ("[1]:", "[ ]:" ...).
    """
    initial = page.evaluate(_PROMPTS_JS)
    # Select the first cell, so that the notebook is the current widget the menu acts on.
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell .jp-InputPrompt").first.click()
    deadline = time.monotonic() + timeout_s
    started, clicks, clicked_at = False, 0, 0.0
    while time.monotonic() < deadline:
        if not started and time.monotonic() - clicked_at > 15:
            # Should a click land before JupyterLab has wired the kernel up, it does nothing;
            # nothing started within 15 s: use the menu again (three times at most).
            if clicks == 3:
                break
            page.keyboard.press("Escape")
            page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
            page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
            clicks, clicked_at = clicks + 1, time.monotonic()
        prompts = page.evaluate(_PROMPTS_JS)
        running = any("*" in prompt for prompt in prompts)
        idle = page.locator(
            '.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]'
        ).count()
        # Started: a cell is queued or running, or a prompt changed (a short notebook can
        # finish between two looks).
        started = started or running or prompts != initial or not prompts
        if started and not running and idle:
            time.sleep(1.0)  # let late outputs (widgets, images) render
            if not any("*" in p for p in page.evaluate(_PROMPTS_JS)):
                return page.evaluate(_PROMPTS_JS)
        time.sleep(0.5)
    raise AssertionError(
        f"Run All did not {'finish' if started else 'start'} within {timeout_s:.0f} s "
        f"({clicks} clicks on Run > Run All Cells); prompts: {page.evaluate(_PROMPTS_JS)}"
    )


def _control(page, interaction: Interaction):
    """The widget the interaction names (None if absent): matched by description/text."""
    controls = page.locator(
        f".jp-Notebook .jp-OutputArea-output :is({CONTROL_SELECTORS[interaction.kind]})"
    )
    if interaction.label is not None:
        wanted = re.compile(rf"^\s*{re.escape(interaction.label)}\s*$")
        if interaction.kind == "button":
            controls = controls.filter(has_text=wanted)
        else:
            controls = controls.filter(
                has=page.locator("label.widget-label, label.widget-label-basic span",
                                 has_text=wanted)
            )  # fmt: skip
    return controls.first if controls.count() else None


def _act(page, control, interaction: Interaction) -> str:
    """Do the interaction to ``control``; return what was done, for messages."""
    control.scroll_into_view_if_needed()
    kind = interaction.kind
    if kind == "slider":
        handle = control.locator(".noUi-handle").first
        before = handle.get_attribute("aria-valuenow")
        handle.focus()
        handle.press("ArrowRight")
        if handle.get_attribute("aria-valuenow") == before:  # already at its maximum
            handle.press("ArrowLeft")
            handle.press("ArrowLeft")
        return f"moved slider from {before} to {handle.get_attribute('aria-valuenow')}"
    if kind == "dropdown":
        select = control.locator("select")
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.selectedIndex")
        if len(options) < 2:
            return "dropdown has one option: nothing to change"
        target = (current + 1) % len(options)
        select.select_option(index=target)
        return f"chose {options[target]!r}"
    if kind == "toggle":
        buttons = control.locator(".widget-toggle-button:not(.mod-active)")
        if not buttons.count():
            return "toggle buttons have no other choice"
        text = buttons.first.inner_text()
        buttons.first.click()
        return f"toggled {text!r}"
    if kind == "checkbox":
        control.locator("input").first.click()
        return "clicked checkbox"
    if kind == "button":
        control.click()
        return "clicked button"
    if kind == "text":
        box = control.locator("input, textarea").first
        value = interaction.value
        if box.get_attribute("type") == "number" and not re.fullmatch(r"-?[\d.]+", value):
            current = float(box.input_value() or 0)
            top = box.get_attribute("max")
            value = (
                f"{current + 1:g}"
                if top is None or current + 1 <= float(top)
                else f"{current - 1:g}"
            )
        box.fill(value)
        if control.locator("textarea").count():
            box.press("Tab")
        else:
            box.press("Enter")
        return f"typed {value!r}"
    raise ValueError(f"unknown widget kind {kind!r}")


def _wait_idle(page, timeout_s: float = WIDGET_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        idle = page.locator(
            '.jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status="idle"]'
        ).count()
        if idle:
            return
        time.sleep(0.2)


def exercise_widgets(
    page, plan: tuple[Interaction, ...], *, generic: bool, timeout_s: float = WIDGET_TIMEOUT_S
) -> list[str]:
    """Do each interaction of ``plan``; return the problems found (empty: all good).

    ``generic``: the plan is GENERIC_WIDGETS, so absent widgets are skipped, and at least one
    present control must change its output.
    """
    problems: list[str] = []
    changed_any, tried = False, []
    for interaction in plan:
        what = (
            f"{interaction.kind} {interaction.label!r}" if interaction.label else interaction.kind
        )
        control = _control(page, interaction)
        if control is None:
            if not generic:
                problems.append(f"no {what} widget found (described as {interaction.label!r})")
            continue
        before = page.evaluate(_SNAPSHOT_JS, [control.element_handle(), OUTPUT_SELECTOR])
        done = _act(page, control, interaction)
        tried.append(f"{what}: {done}")
        after = before
        deadline = time.monotonic() + (timeout_s if interaction.changes else 1.5)
        while time.monotonic() < deadline:
            time.sleep(0.3)
            after = page.evaluate(_SNAPSHOT_JS, [control.element_handle(), OUTPUT_SELECTOR])
            if after["html"] != before["html"]:
                time.sleep(0.5)  # let the callback finish writing
                _wait_idle(page)
                after = page.evaluate(_SNAPSHOT_JS, [control.element_handle(), OUTPUT_SELECTOR])
                break
        _wait_idle(page)
        changed = after["html"] != before["html"]
        changed_any = changed_any or changed
        if interaction.changes and not changed and not generic:
            problems.append(
                f"{what}: {done}, but the output next to it did not change within "
                f"{timeout_s:.0f} s ({before['count']} output widget(s) watched)"
            )
        if interaction.expect and not re.search(interaction.expect, after["text"]):
            problems.append(
                f"{what}: {done}; the output should match {interaction.expect!r} but reads "
                f"{after['text'][:300]!r}"
            )
    if generic and tried and not changed_any:
        problems.append("no widget changed its output: " + "; ".join(tried))
    return problems


def log_console_errors(page) -> list[str]:
    """Errors JupyterLab logged for the notebook outside any cell: e.g. a widget callback
    that raised outside an ``Output`` widget. Opens View > Show Log Console."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^View$")).click()
    page.locator('.lm-Menu-item[data-command="logconsole:open"]').click()
    page.wait_for_selector(".jp-LogConsolePanel")
    time.sleep(0.5)
    levels = ('[data-log-level="error"]', '[data-log-level="critical"]')
    selector = ", ".join(
        f".jp-LogConsolePanel .jp-OutputArea-child:has(.jp-OutputArea-prompt{level})"
        for level in levels
    )
    return page.eval_on_selector_all(selector, "els => els.map(e => e.innerText.slice(-1500))")


_LAB_WIDGETS_JS = """
els => els.filter(e => !e.querySelector('.widget-hprogress, .widget-vprogress')  // tqdm bars
                  && !(e.innerText || '').trim().startsWith('Loading widget'))
"""


def rendered_widgets(page) -> int:
    """How many widget views rendered in cell outputs, progress bars (tqdm) not counted."""
    return page.eval_on_selector_all(
        ".jp-Notebook .jp-OutputArea-output > .jupyter-widgets",
        f"els => ({_LAB_WIDGETS_JS})(els).length",
    )


def _screenshot(page, path: Path) -> None:
    """A screenshot with the lab's first widget (not a progress bar) in view."""
    page.eval_on_selector_all(
        ".jp-Notebook .jp-OutputArea-output > .jupyter-widgets",
        f"els => {{ const w = ({_LAB_WIDGETS_JS})(els)[0]; if (w) w.scrollIntoView(); }}",
    )
    time.sleep(0.3)
    page.screenshot(path=str(path))


def _exercise_cells(nb) -> list[int]:
    return [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")
    ]


def _lab_notebook(course: Path, folder: str, lab: str) -> Path:
    path = course / folder / lab / f"{lab}.ipynb"
    if not path.exists():
        pytest.fail(
            f"{folder}/{lab}/{lab}.ipynb does not exist: run `python -m course_utils build {lab}`"
            f" and `python -m course_utils release {lab}`"
        )
    return path


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lab", LABS)
def test_student_notebook_opens_with_exercises(lab, course, server, page, output_dir):
    nb = nbformat.read(_lab_notebook(course, "notebooks", lab), as_version=4)
    open_notebook(page, server, f"notebooks/{lab}/{lab}.ipynb")

    cells = page.locator(".jp-Notebook .jp-Cell")
    assert cells.count() == len(nb.cells), "not every cell of the student notebook is shown"
    missing = []
    for index in _exercise_cells(nb):
        cell = cells.nth(index)
        cell.scroll_into_view_if_needed()
        text = cell.locator(".jp-InputArea-editor").inner_text()
        if "YOUR CODE HERE" not in text:
            missing.append(f"cell {index + 1}: {text[:200]!r}")
    assert not missing, "exercise cells without 'YOUR CODE HERE':\n" + "\n".join(missing)
    assert not notebook_errors(page), notebook_errors(page)
    assert not page.page_errors, f"JavaScript errors while loading: {page.page_errors}"
    cells.first.scroll_into_view_if_needed()
    page.screenshot(path=str(output_dir / f"{lab}-student.png"))


GRADE_TIMEOUT_S = 480  # grading lab 00 in a terminal on a busy 2-core machine


def _tab_label(page) -> str:
    return page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current").inner_text().strip()


def test_start_page_file_browser_and_a_terminal_grade(course, server, page, output_dir):
    """What a newcomer does first: the start page shows lab 00; lab 01, where lab 00 points,
    opens from the file browser; the grade command lab 00 suggests works in a terminal."""
    first, second = LABS[0], LABS[1]
    page.goto(f"{server.url}/?reset&token={server.token}")  # the server's default page
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    assert _tab_label(page) == f"{first}.ipynb", _tab_label(page)

    # The file browser shows the whole course, from its root.
    if not page.locator(".jp-FileBrowser .jp-DirListing-content").is_visible():
        page.locator('.jp-SideBar [data-id="filebrowser"]').click()
    page.locator(".jp-FileBrowser .jp-BreadCrumbs-home").click()

    def open_item(name: str) -> None:
        item = page.locator(".jp-FileBrowser .jp-DirListing-item").filter(
            has=page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{name}$"))
        )
        item.dblclick()

    for name in ("notebooks", second, f"{second}.ipynb"):
        open_item(name)
    page.wait_for_function(
        "label => Array.from(document.querySelectorAll("
        "'.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current')).some("
        "t => t.innerText.trim() === label)",
        arg=f"{second}.ipynb",
    )
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
    assert not notebook_errors(page), notebook_errors(page)
    page.screenshot(path=str(output_dir / "start-file-browser.png"))

    # A terminal opens at the course root, where lab 00's command finds the notebook.
    command = f"python -m course_utils grade notebooks/{first}/{first}.ipynb"
    assert command in (ROOT / "solutions" / first / f"{first}.py").read_text(encoding="utf-8")
    for name in ("grade-output.txt", "grade-exit.txt"):
        (course / name).unlink(missing_ok=True)
    page.locator(".lm-MenuBar-item", has_text=re.compile("^File$")).click()  # File > New >
    page.locator(".lm-Menu-item", has_text=re.compile("^New")).first.hover()
    page.locator('.lm-Menu-item[data-command="terminal:create-new"]').click()  # Terminal
    page.wait_for_selector(".jp-Terminal .xterm")
    page.locator(".jp-Terminal .xterm").last.click()
    page.keyboard.type(
        f"{command} --fail-under 1 > grade-output.txt 2>&1; echo $? > grade-exit.txt\n"
    )
    exit_file = course / "grade-exit.txt"
    deadline = time.monotonic() + GRADE_TIMEOUT_S
    while not (exit_file.exists() and exit_file.read_text().strip()):
        if time.monotonic() > deadline:
            page.screenshot(path=str(output_dir / "start-terminal.png"))
            raise AssertionError(
                f"the terminal did not finish `{command}` within {GRADE_TIMEOUT_S} s"
            )
        time.sleep(1)
    output = (course / "grade-output.txt").read_text(encoding="utf-8", errors="replace")
    page.screenshot(path=str(output_dir / "start-terminal.png"))
    # The untouched notebook scores 0: grade ran, and --fail-under 1 turned that into exit 1.
    assert f"Graded notebooks/{first}/{first}.ipynb" in output, output
    assert re.search(r"^Score: 0/\d+", output, re.M), output
    assert exit_file.read_text().strip() == "1", (exit_file.read_text(), output)


@pytest.mark.parametrize("lab", LABS)
def test_solution_notebook_runs_and_widgets_respond(lab, course, server, page, output_dir):
    _lab_notebook(course, "solutions", lab)
    open_notebook(page, server, f"solutions/{lab}/{lab}.ipynb")
    prompts = run_all_cells(page)
    screenshot = output_dir / f"{lab}.png"
    try:
        errors = notebook_errors(page)
        assert not errors, f"{lab}: cells show errors:\n" + "\n\n".join(errors)
        unrun = [i + 1 for i, p in enumerate(prompts) if not re.match(r"\[\d+\]", p)]
        assert not unrun, f"{lab}: code cells {unrun} did not run (prompts: {prompts})"

        assert rendered_widgets(page) > 0, (
            f"{lab}: no ipywidget rendered; every lab needs at least one (is the widget "
            "manager missing, or did the widget cell not display?)"
        )
        plan = WIDGETS.get(lab, GENERIC_WIDGETS)
        problems = exercise_widgets(page, plan, generic=lab not in WIDGETS)
        problems += [f"cell error after using the widgets:\n{e}" for e in notebook_errors(page)]
        # A figure that shows as "<Figure size 640x480 with 1 Axes>" was never drawn (e.g. a
        # non-inline matplotlib backend leaked into the kernel).
        undrawn = page.locator(".jp-OutputArea-output", has_text=re.compile(r"<Figure size "))
        if undrawn.count():
            problems.append(f"{undrawn.count()} output(s) show a figure's text, not its picture")
        _screenshot(page, screenshot)
        problems += [f"logged error:\n{e}" for e in log_console_errors(page)]
        assert not problems, f"{lab}: widgets:\n" + "\n\n".join(problems)
        assert not page.page_errors, f"JavaScript errors: {page.page_errors}"
    finally:
        if not screenshot.exists():
            _screenshot(page, screenshot)


# ---------------------------------------------------------------------------------------------
# The checker, checked: a broken notebook must be reported.
# ---------------------------------------------------------------------------------------------

_BROKEN_WIDGETS = """\
import ipywidgets as widgets
from IPython.display import display

out = widgets.Output()
button = widgets.Button(description="Explode")
slider = widgets.IntSlider(value=5, min=0, max=10, description="fails inside:")

def explode(_=None):
    raise RuntimeError("planted: callback failed outside an Output")

def fails_inside(_=None):
    with out:
        raise RuntimeError("planted: callback failed inside an Output")

button.on_click(explode)
slider.observe(fails_inside, names="value")
display(widgets.VBox([button, slider, out]))
"""


def _write_broken_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell("import warnings\nwarnings.warn('a warning is not an error')"),
        nbformat.v4.new_code_cell(_BROKEN_WIDGETS),
        nbformat.v4.new_code_cell("1 / 0"),
        nbformat.v4.new_code_cell("print('never runs')"),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_checker_catches_a_broken_notebook(server, page):
    open_notebook(page, server, "_checks/broken.ipynb")
    prompts = run_all_cells(page)
    errors = notebook_errors(page)
    assert len(errors) == 1 and "ZeroDivisionError" in errors[0], errors
    assert re.match(r"\[\d+\]", prompts[0]) and not re.match(r"\[\d+\]", prompts[-1]), prompts
    assert rendered_widgets(page) == 1

    problems = exercise_widgets(
        page,
        (Interaction("button", "Explode"), Interaction("slider", "fails inside:")),
        generic=False,
        timeout_s=5,
    )
    assert any("Explode" in p and "did not change" in p for p in problems), problems
    inside = notebook_errors(page)
    assert any("callback failed inside an Output" in e for e in inside), inside
    logged = log_console_errors(page)
    assert any("callback failed outside an Output" in e for e in logged), logged
    # A widget that is not there is reported too.
    assert exercise_widgets(page, (Interaction("slider", "absent:"),), generic=False, timeout_s=5)
