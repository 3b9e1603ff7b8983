"""demix: split a song into bass, drums, other and vocals with a blend of
pretrained Open-Unmix and Demucs models.

This package is the engine; it knows nothing of any challenge's protocol.
"""

#: The four stems, in the order every output of the engine uses.
TARGETS = ("bass", "drums", "other", "vocals")

#: The rate the engine works at: the rate of MUSDB18 and of every official model.
SAMPLE_RATE = 44100
