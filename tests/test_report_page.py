"""Listening pages: the data they are built from (windows, excerpts, spectral
descriptors, spectrograms), and the pages of ``python -m evaluation report``
and ``python -m demix separate --report`` opened from file:// in a real
browser (Debian's Chromium, headless, driven by Selenium)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from demix import SAMPLE_RATE, TARGETS
from demix.audio import write_wav_atomically
from demix.errors import AudioError
from listening_pages import descriptors as measures
from listening_pages import markup, render
from listening_pages import window as windows

from conftest import ORACLE_RUN_MEMBER, ORACLE_RUN_METHODS

PROJECT = Path(__file__).resolve().parents[1]
#: The pages play this many seconds of the shared oracle run's excerpts (conftest.oracle_runs).
WINDOW = 3.0
#: The track whose mpi estimates are deleted: its page must say how to keep them.
UNKEPT = "The Easton Ellises - Falcon 69"


# ---------------------------------------------------------------- the window


def test_the_window_is_where_the_audio_is_loudest():
    rate = 8000
    rng = np.random.default_rng(0)
    audio = 0.01 * rng.standard_normal((2, 20 * rate))
    audio[:, int(12.3 * rate):int(14.1 * rate)] *= 50  # a loud 1.8 s
    window = windows.loudest_window(audio, rate, WINDOW)
    assert window.length == WINDOW * rate and window.rate == rate and window.reason == "loudest"
    assert window.start_seconds <= 12.3 and window.end_seconds >= 14.1
    assert window.start_seconds % windows.WINDOW_STEP_SECONDS == 0
    np.testing.assert_array_equal(window.cut(audio), audio[:, window.start:window.start + window.length])


@pytest.mark.parametrize("block", [1, 777, 8000, 10**6])
def test_the_window_found_block_by_block_is_the_one_of_the_whole_song(block):
    """``separate --report`` streams the mixture from disk instead of decoding it whole."""
    rate = 8000
    audio = 0.01 * np.random.default_rng(3).standard_normal((2, 20 * rate + 123))
    audio[:, int(5.2 * rate):int(5.9 * rate)] *= 30
    blocks = (audio[:, start:start + block] for start in range(0, audio.shape[1], block))
    streamed = windows.loudest_window_of_blocks(blocks, audio.shape[1], rate, 3.0)
    assert streamed == windows.loudest_window(audio, rate, 3.0)
    assert streamed.start_seconds <= 5.2 and streamed.end_seconds >= 5.9


def test_a_short_song_is_one_window_and_a_late_start_moves_back():
    rate = 8000
    short = np.ones((1, 3 * rate), dtype=np.float32)
    window = windows.loudest_window(short, rate, 10.0)
    assert (window.start, window.seconds) == (0, 3.0)
    late = windows.fixed_window(20 * rate, rate, start_seconds=18.0, seconds=4.0)
    assert (late.start_seconds, late.end_seconds) == (16.0, 20.0)
    # an estimate shorter than its reference is padded to the window's length
    cut = late.cut(np.ones((2, 19 * rate)))
    assert cut.shape == (2, 4 * rate) and cut[:, -rate:].sum() == 0 and cut[:, :-rate].min() == 1


def test_an_excerpt_read_from_a_file_is_its_window(tmp_path):
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal((2, 6 * SAMPLE_RATE))).astype(np.float32)
    path = write_wav_atomically(tmp_path / "vocals.wav", audio.T, SAMPLE_RATE)
    for start in (1.5, 4.0):  # inside, and running past the end of the file
        window = windows.Window(int(start * SAMPLE_RATE), int(WINDOW * SAMPLE_RATE), SAMPLE_RATE, "test")
        np.testing.assert_array_equal(render.read_excerpt(path, window), window.cut(audio))
    other_rate = windows.Window(0, 100, 48000, "test")
    with pytest.raises(AudioError, match=re.escape(f"{path}: 44100 Hz, expected 48000 Hz")):
        render.read_excerpt(path, other_rate)
    with pytest.raises(AudioError, match=re.escape(str(tmp_path / "absent.wav"))):
        render.read_excerpt(tmp_path / "absent.wav", other_rate)


# ---------------------------------------------------------------- descriptors and spectrograms


def _sine(frequency: float, seconds: float = 2.0, rate: int = SAMPLE_RATE) -> np.ndarray:
    time_axis = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * frequency * time_axis)[None, :]


@pytest.mark.parametrize("frequency", [110.0, 1000.0, 5000.0])
def test_a_sines_centroid_is_its_frequency(frequency):
    values = measures.descriptors(_sine(frequency), SAMPLE_RATE)
    assert values.centroid == pytest.approx(frequency, rel=0.005)
    assert values.bandwidth < 50  # one line: the spread is the window's main lobe
    assert values.flatness < 1e-4 and values.entropy < 0.2


def test_white_noise_is_flat():
    noise = np.random.default_rng(2).standard_normal((2, 3 * SAMPLE_RATE))
    values = measures.descriptors(noise, SAMPLE_RATE)
    assert values.flatness == pytest.approx(1.0, abs=0.01)
    assert values.entropy == pytest.approx(1.0, abs=0.01)
    assert values.centroid == pytest.approx(SAMPLE_RATE / 4, rel=0.01)  # the middle of 0 .. rate/2


def test_a_duller_copy_has_a_lower_centroid_and_silence_has_none(track):
    from scipy.signal import butter, sosfilt

    reference = track[1]["drums"]
    dull = sosfilt(butter(4, 2000, fs=SAMPLE_RATE, output="sos"), reference, axis=1)
    sharp, blunt = measures.descriptors(reference, SAMPLE_RATE), measures.descriptors(dull, SAMPLE_RATE)
    assert blunt.centroid < 0.7 * sharp.centroid and blunt.bandwidth < sharp.bandwidth
    assert all(math.isnan(v) for v in measures.descriptors(np.zeros((2, 5000)), SAMPLE_RATE).as_dict().values())


def test_spectrograms_given_one_zero_db_share_a_colour_scale(tmp_path):
    from matplotlib.image import imread

    loud, quiet = _sine(1000.0), 0.01 * _sine(1000.0)
    zero_db = measures.loudest_bin(measures.image_power(loud))
    images = [imread(render.write_spectrogram(tmp_path / f"{name}.png", measures.image_power(audio), SAMPLE_RATE,
                                              zero_db))
              for name, audio in (("loud", loud), ("quiet", quiet))]
    assert images[0].shape == images[1].shape and images[0].shape[1] == 400
    loud_rgb, quiet_rgb = (image[..., :3].sum(axis=-1) for image in images)
    # the same line 40 dB down is darker (magma: dark is low); each scaled to its own loudest bin, both would
    # show it equally bright
    differ = loud_rgb != quiet_rgb
    assert differ.sum() > 1000 and loud_rgb[differ].mean() > quiet_rgb[differ].mean() + 0.5
    assert not list(tmp_path.glob(".*"))  # written through temporary files, none left


# ---------------------------------------------------------------- the evaluation page


def run_module(module: str, *args, **popen):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=PROJECT,
                          capture_output=True, text=True, **popen)


@pytest.fixture(scope="module")
def evaluation_page(tmp_path_factory, oracle_runs):
    """The shared run of two oracles on the two real excerpts (conftest.oracle_runs),
    copied without its member's results, one (method, track) with its
    estimates deleted, then ``report``."""
    root, shared = oracle_runs
    out = tmp_path_factory.mktemp("evaluation") / "results"
    member_folder = ORACLE_RUN_MEMBER.replace(":", "_")
    shutil.copytree(shared, out, ignore=lambda _, names: [name for name in names if name == member_folder])
    shutil.rmtree(out / "estimates" / "mpi" / UNKEPT)
    report = run_module("evaluation", "report", out, "--window", WINDOW)
    assert report.returncode == 0, report.stderr[-3000:]
    assert f"listening page: {(out / 'index.html').as_uri()}" in report.stdout
    return root, out


def test_score_files_name_their_references(evaluation_page):
    root, out = evaluation_page
    result = json.loads((out / "scores" / "irm" / f"{UNKEPT}.json").read_text())
    assert result["data"] == {"root": str(root), "subset": "test"}
    frames = result["museval"]["targets"][0]["frames"]  # museval's per-frame values, for the SDR-over-time plots
    assert len(frames) >= 5 and {"SDR", "SIR", "SAR", "ISR"} <= set(frames[0]["metrics"])


def test_the_page_plays_each_references_loudest_window(evaluation_page):
    root, out = evaluation_page
    html = (out / "index.html").read_text()
    tracks = sorted(path.name for path in (root / "test").iterdir())
    assert len(tracks) == 2
    for index, track in enumerate(tracks, 1):
        assets = out / "listening" / f"t{index:03d}-{markup.slug(track)}"
        for target in TARGETS:
            reference, rate = sf.read(root / "test" / track / f"{target}.wav", dtype="float32", always_2d=True)
            window = windows.loudest_window(reference.T, rate, WINDOW)
            assert f"window {window.start_seconds:.1f}–{window.end_seconds:.1f} s of the song" in html
            excerpt, excerpt_rate = sf.read(assets / target / "reference.flac", dtype="float32", always_2d=True)
            assert excerpt_rate == rate and len(excerpt) == WINDOW * rate
            np.testing.assert_allclose(excerpt.T, window.cut(reference.T), atol=1 / 32768)  # 16-bit FLAC
            kept = ("m01-irm",) if track == UNKEPT else ("m01-irm", "m02-mpi")
            for name in ("mixture", *kept):
                assert sf.info(assets / target / f"{name}.flac").frames == WINDOW * rate
                assert (assets / target / f"{name}.png").read_bytes().startswith(b"\x89PNG")
            assert not (assets / target / "m02-mpi.flac").exists() or track != UNKEPT
            assert (assets / f"{target}-frames.png").is_file()


def test_the_page_shows_the_runs_scores_and_says_how_to_keep_estimates(evaluation_page):
    _, out = evaluation_page
    html = (out / "index.html").read_text()
    table = pd.read_csv(out / "results.csv")  # the shared run's, its member's rows too
    table = table[table["method"].isin(ORACLE_RUN_METHODS)]
    # every per-track score of the page's methods in results.csv is on the page (as the value its cell sorts by)
    values = {float(v) for v in re.findall(r'data-value="([-0-9.e+]+)"', html)}
    for score in table["score"].dropna():
        assert any(abs(score - value) <= 1e-5 * max(1.0, abs(score)) for value in values), score
    assert html.count("estimates not kept:") == 1  # mpi on one track
    root = json.loads((out / "scores" / "mpi" / f"{UNKEPT}.json").read_text())["data"]["root"]
    assert f"--root {root} --subset test --method mpi --keep-estimates --out {out}</code>" in html
    assert "not run on this track" not in html


def test_a_moved_data_root_is_named_on_the_page(evaluation_page, tmp_path):
    from evaluation import listening as evaluation_listening
    from evaluation.run import load_results, summary

    _, out = evaluation_page
    moved = tmp_path / "moved"
    results = load_results(out)
    page = evaluation_listening.write_report_page(tmp_path / "page", [(out, r) for r in results], summary(results),
                                                  root=moved, window_seconds=WINDOW, log=lambda _: None)
    html = page.read_text()
    assert html.count(f"references not read from {moved}") == 2  # each track, scores still shown
    assert "<audio" not in html and html.count('class="frames"') == 2 * len(TARGETS)


# ---------------------------------------------------------------- in a browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    binary = _chromium()
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium chromium-driver, "
                    "as scripts/setup.sh --dev does from apt-dev.txt)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--autoplay-policy=no-user-gesture-required", "--window-size=1500,2000"):
        options.add_argument(argument)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, page: Path, window_seconds: float) -> dict:
    """Open ``page`` from file:// and wait for its media; fail on console
    errors, players that did not load their window, images that did not load."""
    driver.get_log("browser")  # drop what an earlier page logged
    driver.get(page.as_uri())
    deadline = time.time() + 60
    state = {}
    while time.time() < deadline:
        state = driver.execute_script("""return {
            complete: document.readyState === "complete",
            audio: Array.from(document.querySelectorAll("audio")).map(a => ({
                src: a.currentSrc, readyState: a.readyState, duration: a.duration, error: a.error && a.error.code})),
            images: Array.from(document.images).map(i => ({src: i.currentSrc, complete: i.complete,
                                                           width: i.naturalWidth}))};""")
        if state["complete"] and all(a["readyState"] >= 1 or a["error"] for a in state["audio"]):
            break
        time.sleep(0.2)
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    assert state["audio"], "no players on the page"
    for audio in state["audio"]:
        assert audio["error"] is None and audio["readyState"] >= 1, audio
        assert audio["duration"] == pytest.approx(window_seconds, abs=1e-3), audio
    for image in state["images"]:
        assert image["complete"] and image["width"] > 0, image
    return state


def column_order(driver, table: str, column: int) -> list[float]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr.method'))"
        ".map(r => parseFloat(r.children[arguments[1]].dataset.value));", table, column)


def test_the_evaluation_page_in_chromium(evaluation_page, browser, tmp_path):
    from selenium.webdriver.common.by import By

    _, out = evaluation_page
    state = open_page(browser, out / "index.html", WINDOW)
    players = 2 * len(TARGETS) * (2 + len(ORACLE_RUN_METHODS)) - len(TARGETS)  # mixture, reference, kept estimates
    assert len(state["audio"]) == players
    assert len(state["images"]) == 1 + 2 * len(TARGETS) + players  # box plots, SDR per frame, spectrograms
    for table in ("#methods-museval", "#methods-global"):
        rows = browser.find_elements(By.CSS_SELECTOR, f"{table} tbody tr.method")
        assert [row.find_element(By.TAG_NAME, "th").text for row in rows] == list(ORACLE_RUN_METHODS)
    browser.save_screenshot(str(tmp_path / "listening-page.png"))

    # sortable by target: highest first, then lowest first
    header = browser.find_element(By.XPATH, "//table[@id='methods-museval']//th[text()='vocals']")
    column = 1 + TARGETS.index("vocals")
    header.click()
    assert column_order(browser, "#methods-museval", column) == sorted(column_order(browser, "#methods-museval",
                                                                                    column), reverse=True)
    header.click()
    assert column_order(browser, "#methods-museval", column) == sorted(column_order(browser, "#methods-museval",
                                                                                    column))

    # the window control: switching players goes on at the same moment; "to" stops playing
    switched = browser.execute_async_script("""const done = arguments[0];
        const group = document.querySelector(".group[data-window]");
        const [first, second] = group.querySelectorAll("audio");
        first.play().then(() => setTimeout(() => {
            const reached = first.currentTime;
            second.play().then(() => setTimeout(() => done({reached: reached, firstPaused: first.paused,
                                                            at: second.currentTime}), 200));
        }, 1000)).catch(error => done({error: String(error)}));""")
    assert "error" not in switched, switched
    assert switched["firstPaused"] and switched["reached"] > 0.3 and switched["at"] >= switched["reached"] - 0.05
    stopped = browser.execute_async_script("""const done = arguments[0];
        const group = document.querySelector(".group[data-window]");
        const player = group.querySelectorAll("audio")[1];
        player.pause();
        const to = group.querySelector(".loop-to");
        to.value = "1"; to.dispatchEvent(new Event("input"));
        player.currentTime = 0;
        player.play().then(() => {
            const started = Date.now();
            (function wait() {
                if (player.paused || Date.now() - started > 8000) {
                    done({paused: player.paused, at: player.currentTime,
                          label: group.querySelector(".loop-label").textContent});
                } else { setTimeout(wait, 100); }
            })();
        }).catch(error => done({error: String(error)}));""")
    assert stopped.get("paused") and stopped["at"] < 2.0 and stopped["label"] == "0.0–1.0 s", stopped
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    browser.execute_script("document.querySelector('section.track').scrollIntoView()")
    browser.save_screenshot(str(tmp_path / "listening-page-track.png"))
    print(f"screenshots: {tmp_path / 'listening-page.png'}, {tmp_path / 'listening-page-track.png'}")


def test_separate_report_page_in_chromium(tmp_path, user_config, mixture_wav, track, browser):
    """A song whose stems are already there (the true ones, so that no model
    runs): separate skips it and still puts it on the page, as it does a
    song it has just separated."""
    out = tmp_path / "separated"
    song = out / mixture_wav.stem
    for target in TARGETS:
        write_wav_atomically(song / f"{target}.wav", track[1][target].T, SAMPLE_RATE)
    completed = run_module("demix", "separate", mixture_wav, "-o", out, "--config", user_config, "--report")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "0 separated, 1 skipped" in completed.stdout
    assert f"listening page: {(out / 'index.html').as_uri()}" in completed.stdout
    duration = sf.info(mixture_wav).duration
    state = open_page(browser, out / "index.html", min(duration, windows.DEFAULT_WINDOW_SECONDS))
    assert len(state["audio"]) == 1 + len(TARGETS) and len(state["images"]) == 1 + len(TARGETS)
    assert all("/listening/" in audio["src"] for audio in state["audio"])
    html = (out / "index.html").read_text()
    assert html.count("whole stem") == len(TARGETS) and "SDR" not in html  # no references, no scores
    for target in TARGETS:
        assert sf.info(song / "listening" / f"{target}.flac").frames == sf.info(song / f"{target}.wav").frames
    browser.save_screenshot(str(tmp_path / "separate-page.png"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    from demix.atomic import atomic_path

    page = tmp_path / "index.html"
    markup.write_page(page, "first", "<p>first</p>")
    with pytest.raises(RuntimeError), atomic_path(page) as temp:
        temp.write_text("half a page")
        raise RuntimeError("interrupted")
    assert "<p>first</p>" in page.read_text() and sorted(tmp_path.iterdir()) == [page]


def test_runs_from_two_folders_and_a_chosen_window_start(evaluation_page, tmp_path, second_track):
    """The same method from two results folders: two rows, each playing its
    own folder's estimates; --window-start puts every window at one place."""
    from evaluation.__main__ import main

    _, out = evaluation_page
    track = second_track
    folders = [tmp_path / "first", tmp_path / "second"]
    for folder in folders:
        (folder / "scores" / "irm").mkdir(parents=True)
        shutil.copy(out / "scores" / "irm" / f"{track}.json", folder / "scores" / "irm")
        shutil.copytree(out / "estimates" / "irm" / track, folder / "estimates" / "irm" / track)
    silent = folders[1] / "estimates" / "irm" / track / "vocals.wav"
    sf.write(silent, np.zeros_like(sf.read(silent)[0]), SAMPLE_RATE, subtype="FLOAT")
    assert main(["report", *map(str, folders), "--out", str(tmp_path / "page"), "--window", str(WINDOW),
                 "--window-start", "1"]) == 0
    html = (tmp_path / "page" / "index.html").read_text()
    assert html.count('<tr class="method">') == 2 * 2 and "irm (first)" in html and "irm (second)" in html
    assert html.count("window 1.0–4.0 s of the song (from the chosen start)") == len(TARGETS)
    vocals = tmp_path / "page" / "listening" / f"t001-{markup.slug(track)}" / "vocals"
    first, second = (sf.read(vocals / f"m0{n}-irm-{name}.flac")[0] for n, name in ((1, "first"), (2, "second")))
    assert np.abs(first).max() > 0.01 and not second.any()


def test_the_pages_hint_redoes_only_the_tasks_without_estimates(evaluation_page):
    """The page tells a user to run again with --keep-estimates: that run
    counts a task done only with its score file and its four stems."""
    from dataclasses import replace

    from evaluation.run import RunSpec, _done

    root, out = evaluation_page
    spec = RunSpec(root=str(root), subset="test", split=None, config=None, models_dir=str(out / "models"),
                   oracle_nfft=4096, out_dir=str(out), keep_estimates=True)
    tracks = sorted(path.name for path in (root / "test").iterdir())
    todo = [(method, track) for method in ORACLE_RUN_METHODS for track in tracks if not _done(spec, method, track)]
    assert todo == [("mpi", UNKEPT)]
    assert all(_done(replace(spec, keep_estimates=False), method, track)
               for method in ORACLE_RUN_METHODS for track in tracks)
