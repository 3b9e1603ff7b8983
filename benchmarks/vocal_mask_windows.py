"""The Vocal Mask CNN's training step: windows built from the augmented audio
at every step (what ``--recipe vocal-mask`` does) against features and
targets computed once and cached (what a training without waveform
augmentations could do instead).

A step is ``--batch-size`` chunks of ``--seq-dur`` seconds of real stems
(the stempeg wheel's MUSDB18 excerpt, looped) through the recipe's own
``losses``: on the fly, the shared augmentations, the resampling to
22,050 Hz, the features and the targets are part of each step; cached, they
were computed before the timing and the step is the network's forward and
backward pass alone (the same windows, at ``--stft-stride``). Both are timed
alternately in one process, so the figures share the machine's state.

    .venv/bin/python benchmarks/vocal_mask_windows.py [--steps 10] [--batch-size 8] [--seq-dur 3] [--res-dims 16 32 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))


def main() -> None:
    import numpy as np
    import stempeg
    import torch

    from demix.members import vocal_mask_net as net
    from training.augment import batch_augmentations
    from training.options import VocalMaskOptions
    from training.vocal_mask import HEAD, VocalMaskRecipe

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-dur", type=float, default=3.0)
    parser.add_argument("--stft-stride", type=int, default=1)
    parser.add_argument("--res-dims", type=int, nargs="+", default=[16, 32, 64])
    args = parser.parse_args()

    options = VocalMaskOptions(root=Path("."), batch_size=args.batch_size, seq_dur=args.seq_dur,
                               stft_stride=args.stft_stride, res_dims=tuple(args.res_dims))
    recipe = VocalMaskRecipe(options, torch.device("cpu"))
    models = torch.nn.ModuleDict({HEAD: net.new_network(recipe.settings)}).train()
    optimizer = torch.optim.Adam(models.parameters(), lr=options.lr)
    augment = batch_augmentations(options.augment)

    streams, rate = stempeg.read_stems(stempeg.example_stem_path(), dtype=np.float32)
    stems = torch.from_numpy(streams[1:5].transpose(0, 2, 1).copy())  # (4 sources, 2, samples)
    frames = recipe.chunk_frames
    looped = stems[..., torch.arange(frames * args.batch_size) % stems.shape[-1]]
    batch = looped.reshape(4, 2, args.batch_size, frames).permute(2, 0, 1, 3).contiguous()

    def train(losses: dict) -> None:
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    def on_the_fly() -> None:
        train(recipe.losses(models, augment(batch)))

    mixture, vocals = recipe._at_model_rate(batch)
    features = net.mixture_features(mixture, recipe.settings)[:, None]
    wanted = net.vocals_mask(vocals, recipe.settings)
    centre = recipe.settings.context_frames

    def cached() -> None:
        logits = models[HEAD](features)
        chosen = net.window_centres(features.shape[-1], recipe.settings, args.stft_stride)
        target = wanted[..., centre:centre + logits.shape[-1]]
        train({HEAD: torch.nn.functional.binary_cross_entropy_with_logits(logits[..., chosen], target[..., chosen])})

    timings = {"on the fly": [], "cached": []}
    for step in range(args.steps + 1):
        for name, function in (("on the fly", on_the_fly), ("cached", cached)):
            started = time.perf_counter()
            function()
            if step:  # the first step of each warms up
                timings[name].append(time.perf_counter() - started)
    windows = args.batch_size * len(range(0, features.shape[-1] - 2 * centre, args.stft_stride))
    print(f"{args.batch_size} chunks of {args.seq_dur} s, res_dims {args.res_dims}, stride {args.stft_stride}: "
          f"{windows} windows per step, {torch.get_num_threads()} threads")
    for name, values in timings.items():
        print(f"  {name:10s}  median {statistics.median(values):.3f} s per step over {len(values)} steps")
    ratio = statistics.median(timings["on the fly"]) / statistics.median(timings["cached"])
    print(f"  on the fly / cached: {ratio:.2f}")


if __name__ == "__main__":
    main()
