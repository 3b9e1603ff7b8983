"""Training and fine-tuning Open-Unmix members with the published augmentations.

``python -m training fit`` writes a model folder in Open-Unmix's own layout,
which the ensemble loads as a member (``model = "path/to/folder"`` in a
config); ``python -m training augment-preview`` writes augmented examples to
listen to. The engine (``demix``) never imports this package.

Modules: options (every option and default), data (tracks and layouts),
examples (seeded random chunks, pitch/tempo), augment (batch augmentations),
models (new, official or folder starting weights), fit (the loop, checkpoints),
folder (the files written), curve (the training-curve PNG), preview.
"""
