# %% [markdown]
# # Lab 00: Start here
#
# Welcome to **LLM architectures, built and compared**. In nine labs you will build the three
# families of transformer language models from scratch in PyTorch, train each of them on
# this computer in minutes, and then test with experiments why one of them, the decoder-only
# GPT, took over.
#
# This first lab is short. It checks that your computer is ready, shows how the exercises
# and their grading work, and ends with a first small model: a table of counts that already
# "writes" text.

# %% [markdown]
# ## 1. Is everything installed?
#
# The next cell prints the versions the course relies on and the device PyTorch will use.
# If something is missing it says what, and how to fix it. You can run the same check in a
# terminal with `python -m course_utils doctor`.

# %%
from course_utils.tooling import doctor

ready_for_the_course = doctor.report()  # True when every line has a ✓

# %% [markdown]
# ## 2. How the labs work
#
# Every lab mixes explanation, code you run, and **exercises**. An exercise is a code cell
# that contains
#
# ```python
# # YOUR CODE HERE
# raise NotImplementedError("Exercise 1 (pick_device): replace this line with your code")
# ```
#
# Replace those two lines with your code. The cell right after an exercise is its **test**:
# run it to check your work. When it passes it prints a line starting with `✓`; when it
# fails it tells you what was expected, what your code returned, and gives a hint. When a
# test fails because an *earlier* exercise is wrong, it says so: fix that one first.
#
# Cells further down that use your exercises wait for them: until the exercise is done and
# its test has passed they print one line, such as "⏳ Finish exercise 2 (bigram_counts,
# `bigram_counts`) to see this", instead of an error or a result computed with a wrong
# function. Run them again once the test passes.
#
# Some things to know:
#
# - **Hidden tests.** When your notebook is graded, each test cell also runs extra checks
#   you cannot see, usually edge cases (a batch of one, an empty input). The visible test
#   passing is a good sign, not a guarantee. Think about the edge cases yourself.
# - **Check your own work** at any time, from a terminal in the course folder:
#   `python -m course_utils grade notebooks/00_start_here/00_start_here.ipynb`. It grades a
#   copy of your notebook exactly as an instructor would, and never changes your file.
#   A terminal opened in JupyterLab runs the course's Python; if another terminal answers
#   that its Python lacks a package the course needs, it names the Python to run instead.
# - **Hints.** A test that fails on your code first prints a short nudge naming the idea it
#   checks. If it fails again, it prints a detailed hint; you can also ask for it at any
#   time with `course_utils.hint(2)` (the exercise's number or name). An exercise you have
#   not started yet gets no hint: its test just says it is not done. Some exercises also
#   have a hint behind a "Hint" line you can click open.
# - **Cells you cannot edit.** Explanations, tests and set-up code are locked, so that
#   grading is fair for everyone. To experiment, add a new cell below (press `B`), copy code
#   into it and change what you like: added cells never hurt your grade, as long as they do
#   not reach into the grading machinery (the grader flags code that does).
# - **Profiles.** The same notebook runs tiny when graded, in minutes on a laptop, and
#   bigger on a GPU. The environment variable `COURSE_PROFILE` (`smoke`, `cpu` or `gpu`)
#   chooses; by default it is `gpu` when a CUDA GPU is present and `cpu` otherwise.

# %%
import course_utils

print("profile:", course_utils.current_profile())

# %% [markdown]
# ## 3. Exercise: pick a device
#
# PyTorch runs the same code on the CPU, on an NVIDIA GPU (`"cuda"`) or on an Apple GPU
# (`"mps"`). Every lab begins by choosing the fastest device that is present. Write
# `pick_device`:
#
# - with `prefer=None`: return `torch.device("cuda")` if `torch.cuda.is_available()`, else
#   `torch.device("mps")` if `torch.backends.mps.is_available()`, else `torch.device("cpu")`;
# - with `prefer` set to `"cpu"`, `"cuda"` or `"mps"`: return that device if it is available,
#   and raise a `RuntimeError` that names it if it is not.
#
# The visible test checks the device this computer really has and `prefer="cpu"`. The grader
# also checks, by pretending a GPU or a Mac is present, the fallback order and the
# `RuntimeError` for a device that is missing.
#
# <details><summary>Hint</summary>
#
# `torch.device("cuda")` builds a device object; comparing two of them with `==` works.
# Check availability with the two functions named above, and nothing else: the tests
# pretend to have a GPU by replacing them.
# </details>

# %% exercise="pick_device"
import torch


def pick_device(prefer=None):
    """Return the best available torch.device, or the preferred one if it is available.

    prefer: None, "cpu", "cuda" or "mps".
    """
    ### BEGIN SOLUTION
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if prefer is None:
        for name in ("cuda", "mps", "cpu"):
            if available[name]:
                return torch.device(name)
    if prefer not in available:
        raise RuntimeError(f"unknown device {prefer!r}; expected 'cpu', 'cuda' or 'mps'")
    if not available[prefer]:
        raise RuntimeError(f"device {prefer!r} is not available here")
    return torch.device(prefer)
    ### END SOLUTION


# %% test="pick_device" points=1 hint="With prefer=None, try cuda, then mps, then cpu, using torch.cuda.is_available() and torch.backends.mps.is_available()." nudge="A device is only worth choosing when PyTorch says it is available: check each kind in order of speed."
from unittest import mock

import torch

from course_utils.checks import check_equal, check_raises, check_true

device = pick_device()
check_true(
    isinstance(device, torch.device), f"pick_device() returned {device!r}, not a torch.device"
)
if torch.cuda.is_available():
    expected = torch.device("cuda")
elif torch.backends.mps.is_available():
    expected = torch.device("mps")
else:
    expected = torch.device("cpu")
check_equal(str(device), str(expected), name="pick_device()")
check_equal(
    str(pick_device("cpu")),
    "cpu",
    name='pick_device("cpu")',
    hint='With prefer set, return torch.device(prefer) when it is available: "cpu" always is.',
)
print("✓ pick_device: visible tests passed; you are on", device)

### BEGIN HIDDEN TESTS
with (
    mock.patch("torch.cuda.is_available", return_value=True),
    mock.patch("torch.backends.mps.is_available", return_value=True),
):
    check_equal(str(pick_device()), "cuda", name="pick_device() with a CUDA GPU present")
    check_equal(
        str(pick_device("mps")),
        "mps",
        name='pick_device("mps") on a Mac',
        hint="With prefer set, return torch.device(prefer) when it is available, even if "
        "CUDA is there too.",
    )
with (
    mock.patch("torch.cuda.is_available", return_value=False),
    mock.patch("torch.backends.mps.is_available", return_value=True),
):
    check_equal(str(pick_device()), "mps", name="pick_device() on a Mac")
    check_raises(
        RuntimeError,
        pick_device,
        "cuda",
        name='pick_device("cuda") without a GPU',
        hint="When the preferred device is not available, raise RuntimeError naming it "
        "instead of falling back to another device.",
    )
with (
    mock.patch("torch.cuda.is_available", return_value=False),
    mock.patch("torch.backends.mps.is_available", return_value=False),
):
    check_equal(str(pick_device()), "cpu", name="pick_device() with no GPU")
    check_raises(
        RuntimeError,
        pick_device,
        "mps",
        name='pick_device("mps") without a Mac GPU',
        hint="When the preferred device is not available, raise RuntimeError naming it "
        "instead of falling back to another device.",
    )
### END HIDDEN TESTS

# %% [markdown]
# `course_utils.pick_device()` is the course's own version, which every later lab uses. It
# also keeps the `smoke` profile on the CPU, so that grading gives the same result on every
# machine.
#
# ## 4. Exercise: the smallest language model
#
# A language model gives, for every context, a probability for each possible next token.
# The smallest useful one looks at one previous character only: a **bigram** model. It is
# nothing but a table of counts. Entry `counts[a, b]` says how often character `b` came
# right after character `a` in the training text.
#
# Write `bigram_counts(ids, vocab_size)`: given a 1-D `LongTensor` of token ids, return a
# `(vocab_size, vocab_size)` tensor of dtype `torch.long` with `counts[a, b]` = the number
# of positions `i` where `ids[i] == a` and `ids[i + 1] == b`.
#
# Try to do it without a Python loop over positions: two shifted views of `ids` give all
# the pairs at once, and `Tensor.index_put_(..., accumulate=True)` (or
# `torch.bincount` on `a * vocab_size + b`) counts them. A sequence of length 0 or 1 has
# no pairs: its table is all zeros.
#
# <details><summary>Hint</summary>
#
# `ids[:-1]` are the "previous" tokens and `ids[1:]` the "next" ones. Each pair `(a, b)` can
# be turned into one number, `a * vocab_size + b`; count those with
# `torch.bincount(..., minlength=vocab_size * vocab_size)`, then `.view(vocab_size, vocab_size)`.
# </details>


# %% exercise="bigram_counts"
def bigram_counts(ids, vocab_size):
    """Count adjacent pairs. ids: (N,) long tensor -> (vocab_size, vocab_size) long tensor."""
    ### BEGIN SOLUTION
    flat = ids[:-1] * vocab_size + ids[1:]
    counts = torch.bincount(flat, minlength=vocab_size * vocab_size)
    return counts.view(vocab_size, vocab_size)
    ### END SOLUTION


# %% test="bigram_counts" points=2 hint="Pair ids[:-1] with ids[1:]; count each pair a*V+b with torch.bincount(minlength=V*V) and reshape to (V, V)." nudge="A bigram is a pair of neighbouring ids: count how often each (previous, next) pair occurs."
import torch

from course_utils.checks import check_tensor

ids = torch.tensor([0, 1, 1, 2, 0, 1])
expected = torch.zeros(3, 3, dtype=torch.long)
for a, b in zip(ids[:-1].tolist(), ids[1:].tolist()):
    expected[a, b] += 1
check_tensor(bigram_counts(ids.clone(), 3), expected, name="bigram_counts([0, 1, 1, 2, 0, 1], 3)")
print("✓ bigram_counts: visible tests passed")

### BEGIN HIDDEN TESTS
from course_utils.checks import hidden_generator

generator = hidden_generator("test_bigram_counts", 1234)
for n, v in [(500, 7), (2, 4), (1, 5), (0, 3), (50, 1)]:
    ids = torch.randint(0, v, (n,), generator=generator)
    expected = torch.zeros(v, v, dtype=torch.long)
    for a, b in zip(ids[:-1].tolist(), ids[1:].tolist()):
        expected[a, b] += 1
    result = bigram_counts(ids.clone(), v)
    check_tensor(result, expected, name=f"bigram_counts of {n} random ids, vocab {v}")
### END HIDDEN TESTS

# %% [markdown]
# ## 5. Train it and let it write
#
# The course's text is real English prose that ships with every Python installation: the
# language reference behind Python's `help()`. Below, each character becomes an id, we count
# the bigrams, turn each row of counts into probabilities, and sample one character at a
# time. Adding 1 to every count ("smoothing") gives unseen pairs a small chance.

# %%
import course_utils
from course_utils import data, seed_everything

seed_everything(0)
text = data.load_corpus()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([stoi[c] for c in text])


def sample(start, length, generator=None):
    out = [stoi[start]]
    for _ in range(length):
        out.append(int(torch.multinomial(probs[out[-1]], 1, generator=generator)))
    return "".join(chars[i] for i in out)


if course_utils.ready("bigram_counts"):
    counts = bigram_counts(ids, len(chars))
    probs = (counts + 1).float()
    probs = probs / probs.sum(dim=1, keepdim=True)
    print(
        f"{len(text):,} characters, {len(chars)} distinct; the table has {counts.numel():,} entries"
    )
    print(sample("T", 200, torch.Generator().manual_seed(0)))

# %% [markdown]
# It is not English, but it is not random either: spaces, short words and capital letters
# after full stops already appear. Every later lab replaces this table with something that
# looks further back. The **bigram picture** below shows the table itself for the most
# common characters: bright cells are likely pairs.

# %%
import matplotlib.pyplot as plt

from course_utils.plots import plot_heatmap

if course_utils.ready("bigram_counts"):
    common = counts.sum(dim=1).argsort(descending=True)[:20].sort().values
    labels = [repr(chars[i])[1:-1] for i in common]
    ax = plot_heatmap(
        probs[common][:, common], x_labels=labels, y_labels=labels, title="P(next | previous)"
    )
    ax.set_xlabel("next character")
    ax.set_ylabel("previous character")
    plt.show()

# %% [markdown]
# ## 6. Play with it
#
# Pick a first character and a length, and press **Sample**. Each press draws a new sample.

# %%
import ipywidgets as widgets
from IPython.display import display

start_box = widgets.Text(value="T", description="start:", layout=widgets.Layout(width="160px"))
length_slider = widgets.IntSlider(value=80, min=10, max=400, step=10, description="length:")
button = widgets.Button(description="Sample", button_style="primary")
output = widgets.Output(layout=widgets.Layout(border="1px solid #ccc", min_height="60px"))


def on_sample(_=None):
    first = start_box.value[:1] or "T"
    with output:
        output.clear_output()
        if first not in stoi:
            print(f"{first!r} never occurs in the corpus; try another character.")
        else:
            print(sample(first, length_slider.value))


if course_utils.ready("bigram_counts"):
    button.on_click(on_sample)
    length_slider.observe(on_sample, names="value")
    display(widgets.VBox([widgets.HBox([start_box, length_slider, button]), output]))
    on_sample()

# %% [markdown]
# ## What's next
#
# In lab 01 you turn text into tokens properly (characters, then byte-pair encoding like
# GPT's), and give each token a vector and a position: the input of every transformer.
