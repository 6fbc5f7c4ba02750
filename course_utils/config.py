"""Course-wide facts, set in one place.

Everything that names the course's repository (README badges, the Colab setup cell of each
notebook, Binder links) is generated from :data:`REPOSITORY` and :data:`BRANCH`; a test checks
that no other file disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass

REPOSITORY = "llm-architectures-course/llm-architectures"  # GitHub "owner/name"
BRANCH = "main"
# The course's version (pyproject.toml and course_utils.__version__ say the same; a test checks).
# The notebooks are generated from it: each Colab setup cell clones the tag RELEASE_TAG, the
# course exactly as it was when that notebook was released, not the moving BRANCH. Releasing:
# raise VERSION, `python -m course_utils build` and `release` (every notebook's cell changes),
# commit, then tag that commit `git tag v<VERSION>` and push the tag (CONTRIBUTING.md).
VERSION = "0.1.0"
RELEASE_TAG = f"v{VERSION}"
COURSE_ID = "llm-architectures"


@dataclass(frozen=True)
class Lab:
    name: str  # folder and nbgrader assignment name, e.g. "01_tokens_and_embeddings"
    title: str
    builds: str  # one line for the syllabus table
    minutes: int  # wall time of the solution notebook on a 2-core CPU, rounded up (budgets.py)

    @property
    def notebook(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def source(self) -> str:
        """The jupytext percent script the notebook is built from."""
        return f"{self.name}.py"


LABS: tuple[Lab, ...] = (
    Lab(
        "00_start_here",
        "Start here",
        "environment check, how grading and hints work, a first tensor",
        1,
    ),
    Lab(
        "01_tokens_and_embeddings",
        "Tokens and embeddings",
        "character and byte-pair tokenizers, embeddings, sinusoidal vs learned positions",
        1,
    ),
    Lab(
        "02_attention",
        "Attention",
        "scaled dot-product attention, padding and causal masks, multi-head attention",
        1,
    ),
    Lab(
        "03_transformer_block",
        "The transformer block",
        "LayerNorm, feed-forward, residuals, pre-norm vs post-norm, counting parameters",
        1,
    ),
    Lab(
        "04_encoder_only",
        "The encoder (Type C)",
        "a small BERT: masked-language-model pretraining, sentiment with negation, sentence search",
        2,
    ),
    Lab(
        "05_decoder_only",
        "Decoder-only models: a small GPT",
        "next-token training, temperature/top-k/top-p sampling, a KV cache, your model is GPT-2",
        2,
    ),
    Lab(
        "06_encoder_decoder",
        "The encoder-decoder",
        "a seq2seq Transformer with cross-attention translating dates, greedy and beam decoding",
        2,
    ),
    Lab(
        "07_decoder_takeover",
        "Why decoder-only won",
        "the three families at equal compute: simplicity, efficiency, versatility, scaling laws",
        6,
    ),
    Lab(
        "08_training_your_own",
        "Training your own",
        "data hunger, compute cost (6·N·D), pretrain vs fine-tune, a planted secret's exposure "
        "and deduplication",
        2,
    ),
    Lab(
        "09_modern_decoder",
        "The decoder today: Llama and LoRA",
        "RMSNorm, rotary positions, SwiGLU, grouped-query attention, your model is Llama, "
        "LoRA vs full fine-tuning",
        3,  # 147 CPU s (nbval, cpu profile); not yet timed on a quiet machine
    ),
)

LAB_NAMES = tuple(lab.name for lab in LABS)


def lab(name: str) -> Lab:
    """Return the lab called ``name``; raise ``KeyError`` with the valid names otherwise."""
    for candidate in LABS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"unknown lab {name!r}; the labs are: {', '.join(LAB_NAMES)}")


def github_url(path: str = "") -> str:
    base = f"https://github.com/{REPOSITORY}"
    return f"{base}/blob/{BRANCH}/{path}" if path else base


def issues_url() -> str:
    return f"https://github.com/{REPOSITORY}/issues"


def colab_url(path: str) -> str:
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{path}"


def binder_url(path: str | None = None) -> str:
    base = f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}"
    return f"{base}?urlpath=lab/tree/{path}" if path else f"{base}?urlpath=lab"


def clone_url() -> str:
    """The repository for ``git clone`` (Colab's setup cell fetches the course with it)."""
    return f"https://github.com/{REPOSITORY}.git"


# Where Colab's setup cell puts the course: a shallow clone, so that `grade` finds the
# solution notebooks and nbgrader_config.py it needs.
COLAB_COURSE_DIR = "/content/" + REPOSITORY.split("/")[1]


def colab_badge(path: str) -> str:
    return (
        f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(path)})"
    )


def binder_badge(path: str | None = None) -> str:
    return f"[![Launch on Binder](https://mybinder.org/badge_logo.svg)]({binder_url(path)})"
