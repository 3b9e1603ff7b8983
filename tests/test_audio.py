"""Reading every format a user may hand over, and writing atomically."""

import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import example_stem_file
from demix import SAMPLE_RATE, TARGETS
from demix.audio import Audio, from_engine, open_stem_writers, read_audio, song_name, stem_paths, to_engine
from demix.errors import AudioError
from evaluation.scores import global_sdr


@pytest.fixture(scope="module")
def mixture(track):
    """The example's mixture, scaled to peak at 0.99: decoded from AAC it
    overshoots full scale (1.024), which no integer format can hold."""
    mixture = track[1]["mixture"]
    return mixture * np.float32(0.99 / max(0.99, float(np.abs(mixture).max())))


@pytest.mark.parametrize("subtype, tolerance", [("PCM_16", 1e-4), ("PCM_24", 1e-6), ("FLOAT", 0)])
def test_wav_subtypes_read_back(tmp_path, mixture, subtype, tolerance):
    path = tmp_path / "song.wav"
    sf.write(path, mixture.T, SAMPLE_RATE, subtype=subtype)
    audio = read_audio(path)
    assert (audio.channels, audio.frames, audio.sample_rate) == (2, mixture.shape[1], SAMPLE_RATE)
    assert np.abs(audio.samples - mixture).max() <= tolerance


def test_flac_is_lossless(tmp_path, mixture):
    path = tmp_path / "song.flac"
    sf.write(path, mixture.T, SAMPLE_RATE, subtype="PCM_24")
    assert np.abs(read_audio(path).samples - mixture).max() < 1e-6


@pytest.mark.parametrize("extension, codec", [(".mp3", "libmp3lame"), (".m4a", "aac")])
def test_lossy_formats_decode_through_ffmpeg(tmp_path, mixture, extension, codec):
    source = tmp_path / "source.wav"
    sf.write(source, mixture.T, SAMPLE_RATE, subtype="PCM_16")
    encoded = tmp_path / f"song{extension}"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(source), "-c:a", codec, "-b:a", "192k", str(encoded)],
                   check=True)
    audio = read_audio(encoded)
    assert audio.channels == 2 and audio.sample_rate == SAMPLE_RATE
    # encoder delay/padding changes the length by at most a few frames of 1152/1024 samples
    assert abs(audio.frames - mixture.shape[1]) < 4096
    assert np.isfinite(audio.samples).all()
    # the same samples as ffmpeg's own decoder gives, and those are the source's, up to the codec
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(encoded), "-f", "f32le", "-ac", "2", "-"],
                         check=True, capture_output=True).stdout
    by_ffmpeg = np.frombuffer(raw, dtype="<f4").reshape(-1, 2).T
    assert by_ffmpeg.shape == audio.samples.shape
    assert global_sdr(by_ffmpeg, audio.samples) > 60
    common = min(audio.frames, mixture.shape[1])
    assert global_sdr(mixture[:, :common], audio.samples[:, :common]) > 10


def test_stem_mp4_reads_the_mixture_stream(track):
    """Against ffmpeg's own decoding of the first audio stream, and against the sum of the four
    stems (MUSDB's mixture is their sum, up to the AAC coding of each stream)."""
    path = example_stem_file()
    audio = read_audio(path)
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-"],
                         check=True, capture_output=True).stdout
    by_ffmpeg = np.frombuffer(raw, dtype="<f4").reshape(-1, 2).T
    assert by_ffmpeg.shape == audio.samples.shape and global_sdr(by_ffmpeg, audio.samples) > 60
    # measured 15.5 dB on this excerpt (30 on 80s Rock); a stem read for the mixture scores under 5
    assert global_sdr(sum(track[1][t] for t in TARGETS), audio.samples) > 12


def test_mono_stays_mono_through_the_engine(tmp_path, mixture):
    path = tmp_path / "mono.wav"
    sf.write(path, mixture[0], 22050)
    audio = read_audio(path)
    assert audio.channels == 1
    engine = to_engine(audio)
    assert engine.shape == (2, round(audio.frames * SAMPLE_RATE / 22050))
    back = from_engine(torch.stack([engine] * 4), audio)
    assert back.shape == (4, 1, audio.frames)


@pytest.mark.parametrize("rate", [8000, 22050, 48000, 96000])
def test_resampling_round_trip_keeps_length_and_content(mixture, rate):
    import julius

    # a signal at `rate` with content below both Nyquist limits
    source = julius.resample_frac(torch.from_numpy(mixture[:, :SAMPLE_RATE * 2]), SAMPLE_RATE, rate)
    source = julius.lowpass_filter(source, 0.4 * min(rate, SAMPLE_RATE) / rate)
    audio = Audio(source.numpy(), rate)
    back = from_engine(to_engine(audio)[None], audio)[0]
    assert back.shape == audio.samples.shape
    middle = slice(100, -100)
    error = np.abs(back[:, middle] - audio.samples[:, middle]).max()
    # measured at most 1.08e-3 of the peak (8 kHz: julius' low-pass leaves a little above 0.4 × rate)
    assert error < 1.5e-3 * np.abs(audio.samples).max()


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "not a readable audio file"),
    (lambda p: p.write_text("this is a text file, not music\n" * 50), "not a readable audio file"),
    (lambda p: sf.write(p, np.zeros((0, 2), np.float32), SAMPLE_RATE), "contains no audio samples"),
    (lambda p: sf.write(p, np.zeros((1000, 3), np.float32), SAMPLE_RATE), "has 3 channels"),
    (lambda p: sf.write(p, np.full((1000, 2), np.nan, np.float32), SAMPLE_RATE, subtype="FLOAT"), "NaN"),
])
def test_bad_inputs_name_the_file_and_the_problem(tmp_path, make, message):
    path = tmp_path / "bad input.wav"
    make(path)
    with pytest.raises(AudioError) as error:
        read_audio(path)
    assert str(path) in str(error.value) and message in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read_audio(tmp_path / "nothing.wav")


def test_writers_are_atomic(tmp_path):
    out = tmp_path / "song"
    stems = np.random.default_rng(0).standard_normal((4, 2, 1000)).astype(np.float32) * 0.1
    with open_stem_writers(stem_paths(out), SAMPLE_RATE, 2) as writers:
        writers.write(stems)
    before = {target: (out / f"{target}.wav").read_bytes() for target in TARGETS}
    with pytest.raises(RuntimeError):
        with open_stem_writers(stem_paths(out), SAMPLE_RATE, 2) as writers:
            writers.write(stems * 0)
            raise RuntimeError("crash half way")
    # the earlier stems are untouched and no temporary file is left behind
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.wav" for t in TARGETS)
    assert all((out / f"{t}.wav").read_bytes() == before[t] for t in TARGETS)
    data, rate = sf.read(out / "vocals.wav", dtype="float32")
    assert rate == SAMPLE_RATE and np.array_equal(data.T, stems[TARGETS.index("vocals")])


def test_unwritable_output_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(AudioError, match="cannot write output here"):
        with open_stem_writers(stem_paths(blocker / "song"), SAMPLE_RATE, 2):
            pass
