"""The benchmark library times the stages through the backend protocol: every stage is
counted, for the engine and the oracle, the masks are those of an untimed run, and no
method is replaced."""

import numpy as np
import torch

import inference_memory_bank
from model.network import GSFM
from reference.inference import ReferenceMemoryBank
from scripts.benchmarking import STAGES, StageClock, benchmark_network, make_benchmark_video, run_engine, run_oracle
from util.palette import read_mask


def test_stages_are_timed_without_patching(tmp_path):
    video = make_benchmark_video(tmp_path / "videos", 7, 2, 112, 144)  # the oracle needs top-k 50 entries
    device = torch.device("cpu")
    network = benchmark_network(device)
    methods = (
        GSFM.encode_key,
        GSFM.decode_objects,
        inference_memory_bank.MemoryBank.read,
        ReferenceMemoryBank.match_memory,
    )
    for role, run in (("engine", run_engine), ("oracle", run_oracle)):
        timed, plain = tmp_path / role / "timed", tmp_path / role / "plain"
        timed.mkdir(parents=True)
        plain.mkdir()
        stages = StageClock(device)
        with torch.inference_mode():
            assert run(network, video, timed, stages) == 7
            run(network, video, plain, None)
        assert set(stages.seconds) == set(STAGES), role
        assert all(seconds > 0 for seconds in stages.seconds.values()), (role, stages.seconds)
        masks = sorted(p.name for p in plain.glob("*.png"))
        assert len(masks) == 7
        for name in masks:
            np.testing.assert_array_equal(read_mask(timed / name), read_mask(plain / name))
    assert methods == (
        GSFM.encode_key,
        GSFM.decode_objects,
        inference_memory_bank.MemoryBank.read,
        ReferenceMemoryBank.match_memory,
    )
    assert "encode_key" not in vars(network) and "forward" not in vars(network.decoder)


def test_the_memory_read_is_the_interval_between_key_encoding_and_decoding():
    ticks = iter(range(100))
    stages = StageClock(torch.device("cpu"))
    import scripts.benchmarking as library

    real_clock, library.clock = library.clock, lambda: next(ticks)
    try:
        stages.time("key encoding", lambda: None)  # 0 -> 1
        next(ticks)  # the memory read: 1 -> 3 (2 is read here)
        stages.time("decoding", lambda: None)  # 3 -> 4
        stages.time("value encoding", lambda: None)  # 5 -> 6
        stages.time("decoding", lambda: None)  # 7 -> 8: no key encoding before it, no memory read
    finally:
        library.clock = real_clock
    assert dict(stages.seconds) == {"key encoding": 1, "memory read": 2, "decoding": 2, "value encoding": 1}
