"""Generated tasks the labs train and evaluate on, deterministic and offline.

Each task is a module of its own, imported by name (``from course_utils.tasks import sentiment``):

- :mod:`~course_utils.tasks.sentiment` (lab 04): reviews with negation, contrast and
  intensifiers, labelled with the phenomena they contain, and a bag-of-words baseline;
- :mod:`~course_utils.tasks.dates` (lab 06): dates in many formats and languages to ISO dates;
- :mod:`~course_utils.tasks.prompts` (lab 07): the tasks above formatted as text prompts for one
  decoder-only model;
- :mod:`~course_utils.tasks.memos` (lab 08): a fictional company's "private" memos, with
  duplicates and planted canary secrets.

The same seed gives the same data on every machine: generators use their own
``random.Random(seed)``, never the global random state.
"""
