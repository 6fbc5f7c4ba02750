"""The course machinery: how the labs are built, released and graded. No lab imports it.

- :mod:`.cli`: ``python -m course_utils COMMAND`` (also the ``course`` script);
- :mod:`.doctor`: ``doctor``, is this machine ready?
- :mod:`.authoring`: ``build``, lab sources (``solutions/<lab>/<lab>.py``) to solution notebooks;
- :mod:`.release`: ``release``, solution notebooks to the student notebooks in ``notebooks/``;
- :mod:`.grading`: ``grade``, one notebook graded as nbgrader would, never changed;
- :mod:`.course_dir`: the course folder, and the throw-away nbgrader course both commands use;
- :mod:`.nbgrader_setup`: the nbgrader settings that ``nbgrader_config.py`` and ``grade`` share;
- :mod:`.safeguard` and :mod:`.safeguard_scan`: the grading safeguard (a static scan of the
  cells a learner can edit) and :mod:`.kernel_limits`, the grading kernel's launcher;
- :mod:`.sandbox`: where a grading kernel runs (bubblewrap, or watched and restored);
- :mod:`.trusted` and :mod:`.kernel_boot`: the checks test cells take from the grader (and the
  key for hidden cases drawn from the course's grading secret);
- :mod:`.call_guard`: test cells call the learner's code through a guard that fails a call
  that changed its inputs, and the scan flags functions that read a test's variables;
- :mod:`.student_copy`: ``student-copy``, the course without solutions and hidden tests;
- :mod:`.quick_imports`: the command processes leave out jsonschema's slow optional import.
"""
