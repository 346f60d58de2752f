"""Results are never silently stale or mixed: the output folder's record, YouTube-VOS's
all-frames rule, the YouTube-VOS protocol module, full object names."""

import ast
import json
import shutil

import pytest
import torch

import eval_davis
import eval_youtube
import inference_core_yv
from benchmarks.registry import BENCHMARKS, prepare
from evaluation.sinks import Submission
from tests.helpers import REPO
from util.cli import run as cli_run
from util.metrics import format_results


def run(main, *args):
    main([str(a) for a in args] + ["--device", "cpu"])


def expect_exit(fn, *fragments):
    with pytest.raises(SystemExit) as e:
        cli_run(fn)
    for fragment in fragments:
        assert fragment in str(e.value), str(e.value)
    return str(e.value)


@pytest.fixture(scope="module")
def other_weights_file(golden_weights_file, tmp_path_factory):
    """The golden weights with one tensor changed (same file size, another network)."""
    state = torch.load(golden_weights_file, map_location="cpu", weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name] + 1e-3
    path = tmp_path_factory.mktemp("other") / "golden.pth"  # same file name: the path is not the identity
    torch.save(state, path)
    return path


@pytest.mark.slow
def test_rerun_with_other_weights_or_settings_is_refused_then_overwrite(
    synthetic_root, golden_weights_file, other_weights_file, tmp_path
):
    out = tmp_path / "d17"
    davis = synthetic_root / "DAVIS" / "2017"
    common = ("--davis_path", davis, "--output", out)
    run(eval_davis.main, "--model", golden_weights_file, *common)
    first = json.loads((out / "jf_results.json").read_text())
    record = json.loads((out / "eval_record.json").read_text())

    # other weights: refused, naming what differs and the way out; nothing is touched
    message = expect_exit(
        lambda: run(eval_davis.main, "--model", other_weights_file, *common),
        "holds results of another run",
        "weights:",
        "--overwrite",
    )
    assert "code" not in message.split("weights:")[0]  # only what differs is listed
    assert f"({golden_weights_file}) -> " in message and f"({other_weights_file})" in message  # the files
    assert record["weights_file"] == str(golden_weights_file)
    assert json.loads((out / "jf_results.json").read_text()) == first
    # other settings: refused the same way
    expect_exit(
        lambda: run(eval_davis.main, "--model", golden_weights_file, "--top", "20", *common),
        "inference.top_k: 50 -> 20",
    )
    # the same record resumes (nothing recomputed)
    run(eval_davis.main, "--model", golden_weights_file, *common)
    assert json.loads((out / "eval_stats.json").read_text())["videos_processed"] == 0

    # --overwrite recomputes every video under the new record
    run(eval_davis.main, "--model", other_weights_file, "--overwrite", *common)
    stats = json.loads((out / "eval_stats.json").read_text())
    new_record = json.loads((out / "eval_record.json").read_text())
    assert stats["videos_processed"] == 2 and stats["weights"] == new_record["weights"] != record["weights"]
    assert all(v["record"] == new_record["id"] for v in stats["per_video"].values())


@pytest.mark.slow
def test_masks_without_record_or_of_another_record_are_never_summarised(synthetic_root, golden_weights_file, tmp_path):
    out = tmp_path / "d17"
    common = ("--model", golden_weights_file, "--davis_path", synthetic_root / "DAVIS" / "2017", "--output", out)
    run(eval_davis.main, *common)
    # a video whose statistics carry another record (e.g. copied in from another folder)
    stats_file = out / ".eval_stats" / "val01.json"
    stats = json.loads(stats_file.read_text())
    stats_file.write_text(json.dumps({**stats, "record": "0123456789abcdef"}))
    expect_exit(lambda: run(eval_davis.main, *common), "were not made under", "val01", "--overwrite")
    # masks with no record at all (an older version's folder, or copied by hand)
    (out / "eval_record.json").unlink()
    expect_exit(lambda: run(eval_davis.main, *common), "holds masks but no eval_record.json", "--overwrite")
    assert not (out / "eval_record.json").exists()


@pytest.mark.slow
def test_youtube_without_all_frames_is_an_error_unless_sparse_frames(synthetic_root, golden_weights_file, tmp_path):
    yv = tmp_path / "YouTube"
    shutil.copytree(synthetic_root / "YouTube" / "valid", yv / "valid")  # no all_frames/
    common = ("--model", golden_weights_file, "--yv_path", yv, "--size", "-1")
    expect_exit(
        lambda: run(eval_youtube.main, *common, "--output", tmp_path / "o"),
        str(yv / "all_frames" / "valid_all_frames" / "JPEGImages"),
        "--sparse_frames",
    )
    assert not (tmp_path / "o").exists()
    run(eval_youtube.main, *common, "--output", tmp_path / "sparse", "--sparse_frames")
    stats = json.loads((tmp_path / "sparse" / "eval_stats.json").read_text())
    assert stats["protocol"]["sparse_frames"] is True
    assert (tmp_path / "sparse" / "submission.zip").is_file()


def test_eval_youtube_runs_the_protocol_of_inference_core_yv():
    tree = ast.parse((REPO / "eval_youtube.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "inference_core_yv" in imported
    called = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "inference_core_yv"
    }
    assert "settings" in called
    entry = BENCHMARKS["youtube-vos"]
    assert entry.read is inference_core_yv.read_youtube and entry.short_side == inference_core_yv.SHORT_SIDE
    assert inference_core_yv.settings() == {"short_side": 480, "antialias": True}
    assert inference_core_yv.settings(-1, False) == {"short_side": None, "antialias": False}


def test_youtube_outputs_are_the_requested_frames_from_the_first_annotation_on(synthetic_root):
    job = prepare("youtube-vos", synthetic_root / "YouTube", "valid", output_all=False, sparse_frames=False)
    meta = json.loads((synthetic_root / "YouTube" / "valid" / "meta.json").read_text())["videos"]
    assert job.protocol == {"benchmark": "youtube-vos", "split": "valid", "output_all": False, "sparse_frames": False}
    assert isinstance(job.sink, Submission)
    for video in job.videos:
        requested = {f for o in meta[video.name]["objects"].values() for f in o["frames"]}
        assert {video.frames.names[i] for i in video.outputs} == requested
        assert min(video.outputs) == video.first_annotated
    everything = prepare("youtube-vos", synthetic_root / "YouTube", "valid", output_all=True).videos
    for video in everything:
        assert video.outputs == set(range(video.first_annotated, video.num_frames))


def test_j_and_f_table_prints_object_names_in_full():
    row = {"J-Mean": 0.5, "J-Recall": 1.0, "J-Decay": 0.0, "F-Mean": 0.7, "F-Recall": 1.0, "F-Decay": 0.1}
    table = format_results(
        {
            "overall": {"J&F-Mean": 0.6, **row},
            "per_object": {"blackswan_1": row, "dogs-jump_2": row, "a_very_long_video_name_12": row},
        }
    )
    lines = table.splitlines()
    assert [line.split()[0] for line in lines[2:]] == ["blackswan_1", "dogs-jump_2", "a_very_long_video_name_12"]
    assert len({line.index("0.6000") for line in lines[1:]}) == 1  # columns stay aligned
