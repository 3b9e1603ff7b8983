"""The SDX 2023 music demixing track's model protocol around the ensemble:
the class ``my_submission/user_config.py`` names as ``MySeparationModel``."""

from __future__ import annotations

import numpy as np

from demix import TARGETS
from demix.audio import Audio
from demix.separate import separate_audio

from .submission import load_submission_ensemble


class DemixSeparationModel:
    """Loaded once by the evaluator; called once per song."""

    def __init__(self):
        self.ensemble = load_submission_ensemble()

    @property
    def instruments(self) -> list[str]:
        return list(TARGETS)

    def raise_aicrowd_error(self, message: str):
        """The starter kit's way to fail with a message shown to the participant."""
        raise NameError(message)

    def separate_music_file(self, mixed_sound_array, sample_rate):
        """``mixed_sound_array``: what ``soundfile.read`` returns, (n_samples,
        n_channels) or (n_samples,) for mono. Returns ``({target: array of the
        same shape}, {target: sample_rate})``."""
        mixture = np.asarray(mixed_sound_array)
        if mixture.ndim not in (1, 2) or mixture.size == 0:
            self.raise_aicrowd_error(f"expected (n_samples, n_channels) audio, got shape {mixture.shape}")
        samples = mixture[None, :] if mixture.ndim == 1 else mixture.T
        if samples.shape[0] > 2:
            self.raise_aicrowd_error(
                f"got {samples.shape[0]} channels (shape {mixture.shape}); expected (n_samples, 1 or 2)"
            )
        stems = separate_audio(self.ensemble, Audio(np.ascontiguousarray(samples, dtype=np.float32), int(sample_rate)))
        dtype = mixture.dtype if np.issubdtype(mixture.dtype, np.floating) else np.float32
        separated = {
            target: (stems[index][0] if mixture.ndim == 1 else stems[index].T).astype(dtype)
            for index, target in enumerate(TARGETS)
        }
        return separated, {target: sample_rate for target in TARGETS}
