"""The GPU check's report logic, on the CPU: its pytest step (every cuda test skipped here)
and the verdicts it draws from benchmark numbers."""

import pytest
import torch

from scripts import gpu_check


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the cuda tests run for real (make gpu-check)")
def test_cuda_test_step_counts_the_cuda_tests(tmp_path):
    summary = gpu_check.cuda_tests(tmp_path, timeout=300)
    assert summary["tests"] >= 9 and summary["skipped"] == summary["tests"]
    assert summary["failures"] == summary["errors"] == 0 and summary["failed_tests"] == []


def row(speedup, agreement, amp_speedup, memory_ratio):
    return {
        "frames": 60,
        "objects": 3,
        "oracle": {},
        "engine": {"speedup": speedup, "memory_ratio": memory_ratio, "decided_pixel_agreement": agreement},
        "engine_amp": {"speedup": amp_speedup},
    }


def test_verdicts_and_report(tmp_path):
    table = tmp_path / "benchmark.md"
    table.write_text("| the benchmark's table |\n")
    report = {
        "environment": gpu_check.environment("cpu"),
        "skipped": ["profile"],
        "seconds": 12.0,
        "benchmark_short": {
            "inference": [row(2.5, 1.0, 3.2, 0.5), {**row(2.5, 0.9999, 2.9, 0.5), "objects": 1}],
            "training": [{"batch": 8, "speedup": 1.2}],
            "markdown": str(table),
        },
        "benchmark_long": {"inference": [{**row(1, 1, 1, 0.3), "frames": 200}], "markdown": str(table)},
        "videos_per_device": {
            "videos": 8,
            "frames_per_video": 30,
            "size": [480, 854],
            "rows": [
                {"videos_per_device": n, "throughput_fps": fps, "peak_memory_mb": mb, "masks_equal_to_first": same}
                for n, fps, mb, same in ((1, 20.0, 900.0, True), (4, 51.5, 2400.0, False))
            ],
        },
    }
    verdicts = gpu_check.verdicts(report)
    assert verdicts["float32 speed-up, 3 objects"]["met"]
    assert not verdicts["float32 speed-up, 1 object"]["met"]  # fast enough, but masks differ outside near-ties
    assert verdicts["amp speed-up, 3 objects"]["met"] and not verdicts["amp speed-up, 1 object"]["met"]
    assert verdicts["memory ratio at 200 frames"]["met"]
    assert not verdicts["training speed-up, batch 8"]["met"]
    report["targets"] = verdicts
    text = gpu_check.markdown(report)
    assert "| float32 speed-up, 1 object | 2.5 | >= 2.0 | NO |" in text
    assert "| memory ratio at 200 frames | 0.3 | <= 0.333 | yes |" in text
    assert "| the benchmark's table |" in text and "- profile" in text
    assert "| 1 | 20.0 | 900.0 | yes |" in text and "| 4 | 51.5 | 2400.0 | NO |" in text
