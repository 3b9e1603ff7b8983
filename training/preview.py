"""``python -m training augment-preview``: augmented training examples as
WAV files, to hear what the augmentations do.

For a MUSDB18-HQ-layout track folder it writes::

    OUT/example-<k>/original/{mixture,bass,drums,other,vocals}.wav   a random chunk as it is
    OUT/example-<k>/augmented/...                                    the same chunk through the training pipeline
    OUT/only-<augmentation>/...                                      example 1 with only that one, always applied
    OUT/options.json                                                 the augmentation options used

Each mixture is the sum of the sources beside it, as the model hears it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from demix import SAMPLE_RATE, TARGETS
from demix.audio import write_wav_atomically
from demix.errors import DemixError

from .augment import batch_augmentations, mix
from .data import check_lengths, open_track_folder
from .examples import Chunks, Examples, example_seed, repitch_read_frames, seconds_to_frames, seeded_generators
from .folder import write_json
from .options import Augmentations

#: Each augmentation alone, always applied: the options that turn it on.
SOLO = {
    "repitch": {"repitch_proba": 1.0},
    "channelswap": {"channelswap": True},
    "sign-flip": {"sign_flip": True},
    "reverse": {"reverse_proba": 1.0},
    "remix": {"remix_proba": 1.0},
    "gain": {"gain_proba": 1.0},
    "source-mix": {"source_mix_proba": 1.0},
}
_ALL_OFF = {"repitch_proba": 0.0, "channelswap": False, "sign_flip": False, "reverse_proba": 0.0,
            "remix_proba": 0.0, "gain_proba": 0.0, "source_mix_proba": 0.0}


def preview(song: Path, out: Path, augment: Augmentations, examples: int = 4, seq_dur: float = 6.0,
            seed: int = 0) -> list[Path]:
    """Write the preview; returns the folders written."""
    try:
        augment.check()
    except ValueError as error:
        raise DemixError(str(error)) from None
    if examples < 1 or (augment.remix_proba > 0 and examples % augment.remix_group_size):
        raise DemixError(f"--examples must be a positive multiple of --remix-group-size {augment.remix_group_size}")
    track = open_track_folder(Path(song))
    frames = seconds_to_frames(seq_dur)
    # Every variant reads the same chunks: as long as pitch/tempo needs, whether it is on or not.
    read = repitch_read_frames(frames, dataclasses.replace(augment, repitch_proba=1.0))
    check_lengths([track], read, "the song is")
    written = []
    plain, augmented = _examples(track, augment, examples, frames, read, seed)
    for index in range(examples):
        written.append(_write(out / f"example-{index + 1}" / "original", plain[index]))
        written.append(_write(out / f"example-{index + 1}" / "augmented", augmented[index]))
    for name, turn_on in SOLO.items():
        solo = dataclasses.replace(augment, **{**_ALL_OFF, **turn_on})
        _, alone = _examples(track, solo, examples, frames, read, seed)
        written.append(_write(out / f"only-{name}", alone[0]))
    write_json(out / "options.json", {"song": str(song), "examples": examples, "seq_dur": seq_dur, "seed": seed,
                                      "augmentations": dataclasses.asdict(augment)})
    return written


def _examples(track, augment: Augmentations, count: int, frames: int, read: int,
              seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(original chunks, augmented examples), each (count, targets, channels, frames)."""
    if augment.repitch_proba > 0:
        from .fit import check_repitch_tools

        check_repitch_tools()
    dataset = Examples([track], count, frames, augment, seed, read_frames=read)
    chunks = Chunks([track], count, read)
    plain = []
    for key in range(count):  # the chunk each example starts from: the same draw, before any augmentation
        with seeded_generators(example_seed(seed, key)):
            plain.append(chunks[key][..., :frames])
    with seeded_generators(seed):
        augmented = batch_augmentations(augment)(torch.stack([dataset[key] for key in range(count)]))
    return torch.stack(plain), augmented


def _write(folder: Path, stems: torch.Tensor) -> Path:
    write_wav_atomically(folder / "mixture.wav", mix(stems[None])[0].T.numpy(), SAMPLE_RATE)
    for index, target in enumerate(TARGETS):
        write_wav_atomically(folder / f"{target}.wav", stems[index].T.numpy(), SAMPLE_RATE)
    return folder
