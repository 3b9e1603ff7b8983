"""The parts of a catalogue run that need no Ray: how many workers and what
each asks for, the retry rule for a lost worker's song, the progress text,
and the driver's writing of stems a worker returned."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from demix import TARGETS
from demix.audio import commit_stem_files, open_stem_writers, stem_paths
from demix.catalogue_progress import WorkerTally, pace, workers_line
from demix.cluster_sizing import Node, WorkerPlace, nodes_from_ray, plan_workers
from demix.cluster_worker import OutputProbe
from demix.song_queue import QueuedSong, SongQueue

TWO_CPU_NODES = [Node("a", "10.0.0.1", 8, 0), Node("b", "10.0.0.2", 4, 0)]
GPU_NODES = [Node("a", "10.0.0.1", 16, 2), Node("b", "10.0.0.2", 8, 1), Node("c", "10.0.0.3", 4, 0)]


def test_by_default_one_worker_per_node_with_all_its_cpus():
    assert plan_workers(TWO_CPU_NODES, None, use_gpus=True) == [WorkerPlace(8, 0.0, "a"), WorkerPlace(4, 0.0, "b")]


def test_by_default_one_worker_per_gpu_sharing_its_node_s_cpus():
    assert plan_workers(GPU_NODES, None, use_gpus=True) == [
        WorkerPlace(8, 1.0, "a"), WorkerPlace(8, 1.0, "a"), WorkerPlace(8, 1.0, "b")]
    # --device cpu: the GPUs are not asked for, one worker per node
    assert plan_workers(GPU_NODES, None, use_gpus=False) == [
        WorkerPlace(16, 0.0, "a"), WorkerPlace(8, 0.0, "b"), WorkerPlace(4, 0.0, "c")]


def test_n_workers_share_the_cluster_and_fit_on_one_node():
    assert plan_workers(TWO_CPU_NODES, 3, use_gpus=False) == [WorkerPlace(4, 0.0)] * 3
    assert plan_workers(TWO_CPU_NODES, 1, use_gpus=False) == [WorkerPlace(8, 0.0)]  # not 12: no node has 12
    assert plan_workers(TWO_CPU_NODES, 20, use_gpus=False) == [WorkerPlace(1, 0.0)] * 20
    assert plan_workers(GPU_NODES, 6, use_gpus=True) == [WorkerPlace(4, 0.5)] * 6
    with pytest.raises(ValueError):
        plan_workers(TWO_CPU_NODES, 0, use_gpus=False)


def test_nodes_are_read_from_ray_s_entries_live_ones_only():
    entries = [{"NodeID": "a", "Alive": True, "NodeManagerAddress": "10.0.0.1", "Resources": {"CPU": 2.0}},
               {"NodeID": "b", "Alive": False, "NodeManagerAddress": "10.0.0.2", "Resources": {"CPU": 2.0}},
               {"NodeID": "c", "Alive": True, "NodeManagerAddress": "10.0.0.3",
                "Resources": {"CPU": 4.0, "GPU": 1.0}}]
    assert nodes_from_ray(entries) == [Node("a", "10.0.0.1", 2, 0), Node("c", "10.0.0.3", 4, 1)]


def songs(count: int) -> list[QueuedSong]:
    return [QueuedSong(index, f"song {index}.wav", f"out/song {index}") for index in range(count)]


def test_a_lost_song_goes_first_to_another_worker_until_its_tries_are_spent():
    queue = SongQueue(songs(3), retries=1)
    first = queue.next_for(worker=1)
    assert (first.index, first.tries) == (0, 1)
    assert queue.lost(first, worker=1)  # back in front, for another worker
    assert queue.next_for(worker=1).index == 1  # worker 1 lost it: it takes the next one
    again = queue.next_for(worker=2)
    assert (again.index, again.tries) == (0, 2)
    assert not queue.lost(again, worker=2)  # tried 1 + retries times: it has failed
    assert [song.index for song in queue.drain()] == [2] and len(queue) == 0


def test_a_lone_worker_takes_back_the_song_it_lost():
    queue = SongQueue(songs(1), retries=2)
    song = queue.next_for(worker=1)
    assert queue.lost(song, worker=1)
    assert queue.next_for(worker=1) is song and song.tries == 2


def test_the_bar_says_songs_per_hour_and_time_left():
    assert pace(0, 0.0, 10) == "songs/hour: measuring"
    assert pace(2, 60.0, 10) == "120.0 songs/hour, 0:05:00 left"
    assert pace(1, 3600.0, 25) == "1.0 songs/hour, 25:00:00 left"


def test_the_final_line_counts_each_worker_s_songs():
    line = workers_line([WorkerTally("worker 1", "10.0.0.1, 4 threads, cpu", done=3),
                         WorkerTally("worker 2", "10.0.0.2, 4 threads, cpu", done=2, failed=1, lost=1)])
    assert line == ("per worker: worker 1 (10.0.0.1, 4 threads, cpu): 3 separated; "
                    "worker 2 (10.0.0.2, 4 threads, cpu): 2 separated, 1 failed, lost 1 time mid-song")


def test_a_worker_sees_the_output_only_where_the_driver_s_files_are(tmp_path):
    marker, song = tmp_path / ".probe", tmp_path / "song.wav"
    marker.write_text("token")
    song.write_bytes(b"1234")
    assert OutputProbe(str(marker), "token", ((str(song), 4),)).seen_here()
    assert not OutputProbe(str(marker), "another run's", ((str(song), 4),)).seen_here()
    assert not OutputProbe(str(marker), "token", ((str(song), 5),)).seen_here()  # another file at that path
    assert not OutputProbe(str(tmp_path / "elsewhere" / ".probe"), "token", ()).seen_here()


def test_stems_a_worker_returns_are_its_files_put_in_place_whole(tmp_path):
    """What the driver writes is byte for byte what the worker's writers wrote; a
    dead writer's temporary file in the song's folder is swept, as by the writers."""
    worker_stems = stem_paths(tmp_path / "worker")
    stems = np.random.default_rng(0).standard_normal((len(TARGETS), 2, 1000)).astype(np.float32)
    with open_stem_writers(worker_stems, 44100, 2) as writers:
        writers.write(stems)
    files = {target: path.read_bytes() for target, path in worker_stems.items()}
    song = tmp_path / "out" / "song"
    song.mkdir(parents=True)
    leftover = song / ".vocals.999999999.0123abcd.part.wav"  # a killed writer's: no process holds it
    leftover.write_bytes(b"partial")
    os.utime(leftover, (0, 0))
    written = commit_stem_files(stem_paths(song), files)
    assert sorted(os.listdir(song)) == sorted(f"{target}.wav" for target in TARGETS)
    for index, target in enumerate(TARGETS):
        assert written[target].read_bytes() == files[target]
        np.testing.assert_array_equal(sf.read(written[target], dtype="float32")[0].T, stems[index])


def test_catalogue_options_without_workers_are_refused(tmp_path, capsys):
    from demix.cli import main

    assert main(["separate", str(tmp_path / "song.wav"), "-o", str(tmp_path), "--driver-writes"]) == 1
    assert "add --ray ADDRESS or --workers N" in capsys.readouterr().err
