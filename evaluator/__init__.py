"""The MDX 2021 grader's package, written to the starter kit's interface.

The AIcrowd grader writes its own ``evaluator/`` over this folder before it
runs ``run.sh``, so nothing here may be relied on beyond what the kit's copy
offers: ``music_demixing.MusicDemixingPredictor`` (its methods, attributes and
environment variables) and ``aicrowd_helpers`` (the events and ``is_grading``).
Our copy exists so that ``python predict.py`` runs the same loop locally,
events included, and so that the local grader drives the same class.
It imports nothing from the rest of the kit, as the grader's copy does not.
"""
