"""The bundled example: the real MUSDB18 excerpt inside the stempeg wheel,
laid out as a grader test folder with its reference stems."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from demix.audio import song_name, write_wav_atomically
from challenge import MIXTURE_FILE

#: Stream order in MUSDB18 .stem.mp4 files.
MUSDB_STREAMS = ("mixture", "drums", "bass", "other", "vocals")


def lay_out_stem_file(stem_file: Path, test_dir: Path) -> Path:
    """Write ``test_dir/<song>/{mixture,bass,drums,other,vocals}.wav`` from a
    MUSDB .stem.mp4, once (16-bit WAV, as MUSDB18-HQ ships)."""
    import stempeg

    folder = Path(test_dir) / song_name(Path(stem_file))
    if all((folder / f"{stream}.wav").is_file() for stream in MUSDB_STREAMS):
        return folder
    audio, rate = stempeg.read_stems(str(stem_file), dtype=np.float32)
    for index, stream in enumerate(MUSDB_STREAMS):
        write_wav_atomically(folder / f"{stream}.wav", audio[index], rate, subtype="PCM_16")
    assert (folder / MIXTURE_FILE).is_file()
    return folder


def ensure_bundled_example(test_dir: Path) -> Path:
    import stempeg

    return lay_out_stem_file(Path(stempeg.example_stem_path()), test_dir)
