"""SDX 2023: the evaluator imports ``MySeparationModel`` from here.

Change the ensemble in ``my_submission/config.toml`` (copy ``demix/default.toml``
there to start); weights go in ``models/``.
"""

from challenge.separation_model import DemixSeparationModel

MySeparationModel = DemixSeparationModel
