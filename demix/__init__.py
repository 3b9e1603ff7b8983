"""demix: split a song into bass, drums, other and vocals with a per-target
blend of pretrained models: Open-Unmix, Demucs, Spleeter, xumx-sliCQ-V2 and the
MSST families (BS-RoFormer, Mel-Band RoFormer, SCNet, MDX23C, SCNet Tran, SCNet
Masked, BS Conformer).

This package is the engine; it knows nothing of any challenge's protocol.
"""

#: The four stems, in the order every output of the engine uses.
TARGETS = ("bass", "drums", "other", "vocals")

#: The rate the engine works at: the rate of MUSDB18 and of every official model.
SAMPLE_RATE = 44100
