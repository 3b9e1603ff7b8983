"""Challenge packaging: what turns the engine into an AIcrowd submission and
checks it before it goes online.

- :mod:`challenge.challenges`: the challenges this kit submits to (MDX 2021,
  SDX 2023), their ids and ``aicrowd.json`` keys;
- :mod:`challenge.submission`: the participant's ensemble, shared by both entry
  points (``predict.py`` for MDX 2021, ``my_submission/`` for SDX 2023);
- :mod:`challenge.grader`: the local grader (``python test.py``), which runs the
  entry points through the graders' own interfaces (``evaluator/``,
  ``my_submission/aicrowd_wrapper.py``);
- :mod:`challenge.example`: the bundled example song;
- :mod:`challenge.submit`: checks, tags and pushes (``python -m challenge submit``).
"""

#: The mixture's file name in a grader's song folder (both challenges).
MIXTURE_FILE = "mixture.wav"
