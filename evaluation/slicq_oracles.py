"""Oracle upper bounds in the sliCQ transform's domain: the ceiling that a
mask of xumx-sliCQ-V2's time-frequency representation allows, beside the
STFT's (:mod:`evaluation.oracles`), on the same tracks.

The sliced constant-Q transform (sliCQT: the nonstationary Gabor transform
of Holighaus et al., 2013, cut into slices; Hanssian's xumx-sliCQ, 2021) is
computed with the ``xumx-sliCQ-V2`` package's own transform (``NSGTBase``,
``make_filterbanks``), in float32 at 44.1 kHz. Its parameters,
:class:`SlicqParams`: a frequency scale (``bark``, ``mel`` or ``cqlog``,
constant-Q), a number of frequency bins and the lowest bin's frequency
``fmin`` in Hz (the highest is 22050 Hz). The slice length ``sllen``
follows from them as the package suggests it (``Scale.suggested_sllen_trlen``):
the longest filter, ``max_k 8 · Q_k · 44100 / f_k`` samples, rounded up to
a multiple of 4, with transitions of ``sllen / 4``; a low ``fmin`` or many
bins give long slices. The default is the published xumx-sliCQ-V2 model's
transform (pretrained_model/xumx_slicq_v2.json): ``bark,262,32.9``.

With ``X`` the mixture's sliCQT and ``S_j`` the true stems' sliCQTs, each
oracle estimates ``Ŝ_j`` and inverts it with the transform's inverse:

* ``slicq-mpi``, true magnitude with the mixture's phase:
  ``Ŝ_j = |S_j| · X / |X|`` (the package's ``phasemix_sep``; where ``X`` is
  exactly 0 its phase is taken as 0). This is the oracle the package's own
  parameter search (``slicqfinder``) and the paper rank transforms by. The
  estimates need not sum to the mixture: they sum to ``Σ_k |S_k| / |X| · X``,
  louder than the mixture where stems cancel each other;
* ``slicq-irm``, ideal ratio mask: ``Ŝ_j = |S_j| / Σ_k |S_k| · X``. The
  masks sum to one, so the estimates sum to the mixture, up to the inverse's
  rounding.

The global SDR of these against the truth is what a magnitude model with
this transform could reach at best; compared with ``mpi`` and ``irm`` at
``--oracle-nfft`` it says which representation leaves more to gain.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from demix import SAMPLE_RATE, TARGETS
from demix.errors import DemixError

SLICQ_ORACLES = ("slicq-mpi", "slicq-irm")
#: The frequency scales of the package's transform that take a number of bins and fmin.
SCALES = ("bark", "mel", "cqlog")
#: The transform's highest frequency: Nyquist at the only rate it supports.
FMAX = SAMPLE_RATE / 2
_EPSILON = 1e-10


@dataclass(frozen=True)
class SlicqParams:
    """A sliCQT: frequency scale, number of bins, lowest frequency (Hz)."""

    scale: str
    bins: int
    fmin: float

    def __post_init__(self):
        if self.scale not in SCALES:
            raise DemixError(f"sliCQT scale {self.scale!r}: choose one of {', '.join(SCALES)}")
        if not 2 <= self.bins:
            raise DemixError(f"sliCQT bins {self.bins}: must be at least 2")
        if not 0 < self.fmin < FMAX:
            raise DemixError(f"sliCQT fmin {self.fmin:g} Hz: must be above 0 and below {FMAX:g} Hz")

    def __str__(self) -> str:
        """As ``--slicq`` takes it: ``bark,262,32.9``."""
        return f"{self.scale},{self.bins},{self.fmin:g}"

    @classmethod
    def parse(cls, text: str) -> SlicqParams:
        """``SCALE,BINS,FMIN``, e.g. ``bark,262,32.9``."""
        parts = [part.strip() for part in str(text).split(",")]
        if len(parts) != 3:
            raise DemixError(f"--slicq {text!r}: expected SCALE,BINS,FMIN, e.g. {DEFAULT_SLICQ}")
        scale, bins, fmin = parts
        try:
            bins_number = int(bins)
        except ValueError:
            raise DemixError(f"--slicq {text!r}: BINS {bins!r} is not a whole number") from None
        try:
            fmin_hz = float(fmin)
        except ValueError:
            raise DemixError(f"--slicq {text!r}: FMIN {fmin!r} is not a frequency in Hz") from None
        try:
            return cls(scale, bins_number, fmin_hz)
        except DemixError as error:
            raise DemixError(f"--slicq {text!r}: {error}") from None


#: The published xumx-sliCQ-V2 model's transform (fscale, fbins, fmin of pretrained_model/xumx_slicq_v2.json).
DEFAULT_SLICQ = SlicqParams("bark", 262, 32.9)


def slice_length(params: SlicqParams) -> int:
    """The slice length (samples) the package's ``NSGTBase`` chooses for
    ``params``, from the frequency scale alone: without building the
    transform, which for long slices takes memory and time."""
    from xumx_slicq_v2.nsgt import BarkScale, LogScale, MelScale

    scale_class = {"bark": BarkScale, "mel": MelScale, "cqlog": LogScale}[params.scale]
    scale = scale_class(params.fmin, FMAX, params.bins, device="cpu")
    return int(scale.suggested_sllen_trlen(SAMPLE_RATE)[0])


@functools.lru_cache(maxsize=2)
def transform(params: SlicqParams):
    """(forward, inverse, NSGTBase) of the package, built once per process
    and parameters. The package prints a line per ``NSGTBase``: kept out of
    our output. The inverse rearranges its input in place: hand it
    coefficients that are not needed afterwards."""
    from xumx_slicq_v2.transforms import NSGTBase, make_filterbanks

    with contextlib.redirect_stdout(io.StringIO()):
        base = NSGTBase(params.scale, params.bins, params.fmin, fmax=FMAX, fs=float(SAMPLE_RATE), device="cpu")
    forward, inverse = make_filterbanks(base, sample_rate=float(SAMPLE_RATE))
    return forward, inverse, base


@contextlib.contextmanager
def _one_thread():
    """The transform is thousands of small tensor operations (a few per
    frequency bin and slice), which torch's thread pool slows down: the model's
    transform's MPI oracle of a 6 s excerpt took 1.2 s on one thread and 7 to
    16 s on two, on two cores another process was also using (2-core AMD EPYC Zen 4, 2026-12-07)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def check_rate(rate, name: str) -> None:
    """The transform exists at 44.1 kHz only (the package's ``make_filterbanks``)."""
    if int(rate) != SAMPLE_RATE:
        raise DemixError(f"{name}: sampled at {int(rate)} Hz; the sliCQT oracles (xumx-sliCQ-V2's transform) "
                         f"need {SAMPLE_RATE} Hz audio: resample the track first")


def slicq_oracle_estimates(kind: str, mixture: np.ndarray, stems: dict[str, np.ndarray],
                           params: SlicqParams = DEFAULT_SLICQ, rate: int = SAMPLE_RATE,
                           name: str = "this track") -> dict[str, np.ndarray]:
    """``mixture`` and each stem: (n_samples, n_channels) at 44.1 kHz
    (``rate``; another is a :class:`DemixError` naming ``name``). Returns
    float32 estimates of the same shape for every target in ``stems``."""
    if kind not in SLICQ_ORACLES:
        raise ValueError(f"unknown sliCQT oracle {kind!r}; choose one of {', '.join(SLICQ_ORACLES)}")
    check_rate(rate, name)
    with torch.no_grad(), _one_thread():
        return _estimates(kind, mixture, stems, params)


def _estimates(kind: str, mixture: np.ndarray, stems: dict[str, np.ndarray], params: SlicqParams):
    from xumx_slicq_v2.transforms import ComplexNorm

    with warnings.catch_warnings():  # its norbert imports scipy.ndimage.filters, which SciPy deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        from xumx_slicq_v2.phase import phasemix_sep

    forward, inverse, _ = transform(params)
    magnitude = ComplexNorm()
    length = len(mixture)

    def coefficients(audio: np.ndarray) -> list[torch.Tensor]:
        """Blocks of (1, channels, bins, slices, frames, 2): real and imaginary parts."""
        return forward(torch.from_numpy(np.ascontiguousarray(audio.T, dtype=np.float32))[None])

    def invert(blocks: list[torch.Tensor]) -> np.ndarray:
        return inverse(blocks, length)[0].numpy().T.astype(np.float32)

    targets = [target for target in TARGETS if target in stems]
    estimates = {}
    mix = coefficients(mixture)
    # one stem at a time: a whole song's coefficients of four stems at once take gigabytes
    magnitudes = {target: magnitude(coefficients(stems[target])) for target in targets}
    if kind == "slicq-irm":
        total = [sum(blocks) + _EPSILON for blocks in zip(*magnitudes.values())]
    for target in targets:
        if kind == "slicq-mpi":
            # phasemix_sep's atan2 sets the real part of exactly-zero mixture coefficients to 1 in place;
            # that leaves their phase 0 as before, and only the phase of ``mix`` is read here
            estimate = phasemix_sep(mix, magnitudes[target])
        else:
            estimate = [(block / denominator)[..., None] * mix_block
                        for block, denominator, mix_block in zip(magnitudes[target], total, mix)]
        estimates[target] = invert(estimate)
    return estimates
