"""Training models for the ensemble, with the published augmentations.

``python -m training fit --recipe umx|vocal-mask`` trains with one recipe
(Open-Unmix's, or the Vocal Mask CNN's) in the loop they share, and writes a
model folder that the ensemble loads as a member (``model = "path/to/folder"``
in a config); ``python -m training augment-preview`` writes augmented examples
to listen to. The engine (``demix``) never imports this package.

Modules: options (every option and default, per recipe), data (tracks and
layouts), examples (seeded random or tiled chunks, pitch/tempo), augment
(batch augmentations), fit (the shared loop, checkpoints), recipe (what a
recipe brings), umx_recipe and models (Open-Unmix), vocal_mask (the Vocal
Mask CNN), folder (the files written), curve (the training-curve PNG), preview.
"""
