"""course_utils: the helper package of the course "LLM architectures, built and compared".

Later labs import what earlier labs built. The map, in the order the course builds it:

- lab 00: :mod:`~course_utils.profiles` (``settings``, ``pick_device``, ``seed_everything``)
  and :mod:`~course_utils.exercises` (``ready``: demo cells wait until an exercise passes its
  test; ``hint(3)``: an exercise's detailed hint, from ``hints/<lab>.json``);
- lab 01: :mod:`~course_utils.data` (the corpus, batches) and :mod:`~course_utils.tokenizers`
  (characters, byte-pair encoding);
- labs 02-03: :mod:`~course_utils.layers` (attention, masks, feed-forward, the block,
  positions, embeddings): the parts all three families share;
- labs 04-06: :mod:`~course_utils.models` (encoder-only, decoder-only, encoder-decoder, each
  proven equal to BERT, GPT-2 and BART) and :mod:`~course_utils.tasks` (generated sentiment
  and date-translation data);
- lab 07: :mod:`~course_utils.experiments` (FLOPs per token, training to a FLOP budget, a
  power-law fit with its uncertainty) and :mod:`~course_utils.tasks.prompts` (tasks as prompts);
- lab 08: :mod:`~course_utils.tasks.memos` (private memos with planted secrets);
- lab 09: the switches of :mod:`~course_utils.layers` and :mod:`~course_utils.models` that
  make a Llama (RMSNorm, rotary positions, SwiGLU, grouped-query attention,
  ``DecoderModel.from_llama``) and :mod:`~course_utils.lora` (low-rank adapters);
- every lab: :mod:`~course_utils.training` (one training loop with a progress bar and a live
  plot), :mod:`~course_utils.plots`, :mod:`~course_utils.checks` (what exercise tests compare
  with) and :mod:`~course_utils.config` (the lab list).

The machinery that builds, releases and grades the course (the command line
``python -m course_utils``, nbgrader settings, the grading safeguard) lives apart, in
:mod:`course_utils.tooling`; a lab never needs it. Importing this package is cheap: heavy
modules load on first use.
"""

from .exercises import hint, ready
from .profiles import current_profile, pick_device, seed_everything, settings

__version__ = "0.1.0"
__all__ = [
    "current_profile",
    "hint",
    "pick_device",
    "ready",
    "seed_everything",
    "settings",
    "__version__",
]
