"""Reports of evaluation runs: a Markdown table and SiSEC-style box plots.

Rows are methods (from one or more result folders of ``python -m evaluation
run``), columns the targets' median SDR (museval: median over frames, then
over tracks) and their mean, plus the mean global SDR. Published MUSDB18
test-set scores are added as reference rows, labelled as such: they come
from the papers cited in :data:`PUBLISHED`, not from this run, and from all
50 test tracks, so they compare only roughly with a run on other tracks.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from demix import TARGETS

#: Published MUSDB18(-HQ) test median SDR in dB, as (vocals, bass, drums, other) or a mean only.
PUBLISHED = {
    "UMX (Stöter et al. 2019)": {"vocals": 6.32, "bass": 5.23, "drums": 5.73, "other": 4.02},
    "UMXHQ": {"vocals": 6.25, "bass": 5.07, "drums": 6.04, "other": 4.28},
    "UMXL": {"vocals": 7.21, "bass": 6.02, "drums": 7.15, "other": 4.89},
    "X-UMX (Sawata et al. 2021)": {"mean": 5.79},
    "Hybrid Demucs (mdx, Défossez 2021)": {"mean": 7.68},
    "HT Demucs fine-tuned (Rouard et al. 2023)": {"mean": 9.0},
}


def _fmt(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.2f}"


def markdown_table(summary, tracks: int) -> str:
    """``summary``: the frame :func:`evaluation.run.summary` returns."""
    lines = [
        f"Median SDR in dB (museval BSSEval v4: median over 1 s frames, then over tracks; {tracks} tracks), "
        "and the mean global SDR.",
        "",
        "| method | " + " | ".join(TARGETS) + " | mean | mean global SDR |",
        "| --- | " + " | ".join("---:" for _ in TARGETS) + " | ---: | ---: |",
    ]
    for method, rows in summary.groupby("method", sort=False):
        rows = rows.set_index("target")
        sdr = [rows.loc[t, "SDR"] for t in TARGETS]
        # a target whose global SDR is NaN is one the method does not estimate: no mean over targets then
        every_target = bool(np.isfinite([rows.loc[t, "global_SDR"] for t in TARGETS]).all())
        means = (float(np.nanmean(sdr)), float(rows["global_SDR"].mean())) if every_target else (math.nan, math.nan)
        lines.append(f"| {method} | " + " | ".join(_fmt(v) for v in sdr) + f" | {_fmt(means[0])} | {_fmt(means[1])} |")
    for name, scores in PUBLISHED.items():
        per_target = [scores.get(t) for t in TARGETS]
        mean = scores.get("mean", float(np.mean(per_target)) if all(v is not None for v in per_target) else None)
        lines.append(f"| *{name}: published, 50 test tracks* | " + " | ".join(_fmt(v) for v in per_target)
                     + f" | {_fmt(mean)} | – |")
    return "\n".join(lines) + "\n"


def box_plot(table, path: Path) -> Path:
    """Per target, the per-track SDR of each method as a horizontal box."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sdr = table[table["metric"] == "SDR"]
    methods = list(dict.fromkeys(sdr["method"]))
    figure, axes = plt.subplots(1, len(TARGETS), figsize=(4 * len(TARGETS), 0.6 * len(methods) + 1.6),
                                sharey=True, squeeze=False)
    for axis, target in zip(axes[0], TARGETS):
        data = [sdr[(sdr["method"] == m) & (sdr["target"] == target)]["score"].dropna().to_numpy() for m in methods]
        axis.boxplot(data, orientation="horizontal", widths=0.6, showfliers=True)
        axis.set_yticks(range(1, len(methods) + 1), methods)
        axis.set_title(target)
        axis.set_xlabel("SDR (dB), per track")
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle("Per-track SDR (museval v4, median over frames)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
