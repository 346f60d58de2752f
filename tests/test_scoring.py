"""score.py and evaluation.scoring on the generated benchmarks: the per-video scoring gives
the scorers' own overall numbers, the files it writes, and its errors."""

import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

import score
from benchmarks import readers
from benchmarks.registry import BENCHMARKS, load_target
from datasets.synthetic import generate_benchmarks
from evaluation import scoring
from evaluation.report import write_scores
from util.errors import DatasetError
from util.metrics import evaluate_folders
from util.palette import davis_palette, read_mask, write_indexed_png

# benchmark -> (data_path under the generated root, split, ground-truth folder)
CASES = {
    "mose": ("MOSE", "train", "MOSE/train/Annotations"),
    "mose2": ("MOSE", "train", "MOSE/train/Annotations"),
    "lvos": ("LVOS", "valid", "LVOS/valid/Annotations"),
    "vost": ("VOST", "val", "VOST/Annotations"),
    "sav": ("SAV", "val", "SAV/Annotations_6fps"),
}


def _shifted(gt: Path, out: Path, shift: int = 2) -> Path:
    """The ground truth moved ``shift`` pixels right: a method that is close, not exact."""
    for png in gt.rglob("*.png"):
        write_indexed_png(np.roll(read_mask(png), shift, axis=1), davis_palette(), out / png.relative_to(gt))
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_benchmarks(tmp_path_factory.mktemp("scoring"))


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-9


@pytest.mark.parametrize("benchmark", list(CASES))
def test_per_video_scoring_gives_the_scorers_overall_numbers(benchmark, data, tmp_path):
    folder, split, gt = CASES[benchmark]
    pred = _shifted(data / gt, tmp_path / "pred")
    target = load_target(benchmark, data / folder, split)
    ours = scoring.overall_values(scoring.score(target, pred))
    official = BENCHMARKS[benchmark].read(data / folder, split, False).score(pred)["overall"]
    assert list(ours) == list(official)
    assert all(_same(ours[k], official[k]) for k in official), (ours, official)


def test_davis_per_video_scoring_gives_util_metrics_numbers(synthetic_root, tmp_path):
    davis = synthetic_root / "DAVIS" / "2017"
    gt = davis / "trainval" / "Annotations" / "480p"
    pred = _shifted(gt, tmp_path / "pred")
    ours = scoring.overall_values(scoring.score(load_target("davis2017", davis), pred))
    official = evaluate_folders(pred, gt, ["val00", "val01"])["overall"]
    assert all(_same(ours[k], official[k]) for k in official)


def test_lvos_unseen_lists_ship_with_the_project(data, tmp_path, monkeypatch):
    v1, v2 = (readers.read_image_set(readers.LVOS_UNSEEN[v]) for v in ("lvos", "lvos2"))
    assert (len(v1), len(v2)) == (27, 51) and all(len(n) == 8 for n in v1 + v2)
    # without unseen_videos.txt in the split folder the shipped list is read, so J&F-Mean is a number
    root = tmp_path / "LVOS"
    for path in (data / "LVOS").rglob("*"):
        if path.is_file() and path.name != "unseen_videos.txt":
            (root / path.relative_to(data / "LVOS")).parent.mkdir(parents=True, exist_ok=True)
            (root / path.relative_to(data / "LVOS")).write_bytes(path.read_bytes())
    listed = tmp_path / "lvos.txt"
    listed.write_text("lvos1\n")
    monkeypatch.setitem(readers.LVOS_UNSEEN, "lvos", listed)
    overall = BENCHMARKS["lvos"].read(root, "valid", False).score(root / "valid" / "Annotations")["overall"]
    assert overall["J&F-Mean"] == 1.0


def _run(data: Path, out: Path, benchmark: str, *extra) -> None:
    folder, split, _ = CASES[benchmark]
    score.main(
        ["--benchmark", benchmark, "--data_path", str(data / folder), "--split", split, "--output", str(out)]
        + ["--bootstrap", "200"]
        + [str(e) for e in extra]
    )


@pytest.mark.slow
def test_score_zip_and_compare_write_scores_comparison_and_an_offline_report(data, tmp_path):
    gt = data / CASES["sav"][2]
    pred = _shifted(gt, tmp_path / "pred")
    archive = tmp_path / "pred.zip"
    with zipfile.ZipFile(archive, "w") as zf:  # the videos under a top folder, as servers take them
        for png in sorted(pred.rglob("*.png")):
            zf.write(png, f"Annotations/{png.relative_to(pred).as_posix()}")
    out = tmp_path / "out"
    _run(data, out, "sav", "--predictions", archive, "--compare", gt, "--names", "shifted,exact", "--processes", 2)
    scores = json.loads((out / "scores.json").read_text())
    official = BENCHMARKS["sav"].read(data / "SAV", "val", False).score(pred)["overall"]
    assert scores["units"] == "percent" and abs(scores["overall"]["J&F"] - 100 * official["J&F"]) < 1e-9
    lo, hi = scores["ci95"]["J&F"]
    assert lo <= scores["overall"]["J&F"] <= hi
    assert len(scores["per_video"]) == 2 and len(scores["per_object"]) == 4
    comparison = json.loads((out / "comparison.json").read_text())
    jf = comparison["metrics"]["J&F"]
    assert jf["b"] == 100 and abs(jf["difference"] - (100 - jf["a"])) < 1e-9 and jf["difference"] > 0
    assert comparison["wins"] == {"a": 0, "b": 2, "tie": 0} and 0 < jf["p_value"] <= 1
    page = (out / "report.html").read_text()
    assert "<svg" in page and page.count("data:image/jpeg;base64,") >= 3 * 2 * 4
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def test_errors_name_the_problem_and_write_nothing(data, tmp_path):
    gt = data / CASES["vost"][2]
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"expected DIR/<video>/<frame>\.png"):
        _run(data, out, "vost", "--predictions", empty)
    one = _shifted(gt / "vost0", tmp_path / "one" / "vost0")
    with pytest.raises(DatasetError, match="no predictions for 1 of 2 videos \\(vost1\\)"):
        _run(data, out, "vost", "--predictions", one.parent)
    with pytest.raises(DatasetError, match="only in A: none; only in B: vost1"):
        _run(data, out, "vost", "--predictions", one.parent, "--compare", gt, "--names", "A,B")
    small = _shifted(gt, tmp_path / "small")
    path = sorted((small / "vost1").glob("*.png"))[2]
    write_indexed_png(np.zeros((8, 8), np.uint8), davis_palette(), path)
    with pytest.raises(DatasetError, match=f"{path}: 8x8 mask, the ground truth is 96x64"):
        _run(data, out, "vost", "--predictions", small)
    assert not out.exists()


@pytest.mark.parametrize("benchmark", ["mose2", "lvos"])
def test_eval_scripts_scores_and_report_show_the_benchmark_breakdowns(benchmark, data, tmp_path):
    folder, split, gt = CASES[benchmark]
    target = load_target(benchmark, data / folder, split)
    _, scores = write_scores(target, _shifted(data / gt, tmp_path / "pred"), tmp_path)
    assert set(scores) >= {"overall", "ci95", "per_video", "per_object"}
    assert json.loads((tmp_path / "scores.json").read_text()) == scores
    page = (tmp_path / "report.html").read_text()
    title = "disappearance / reappearance" if benchmark == "mose2" else "seen / unseen"
    assert title in page and "Object-size terciles" in page and "data:image/jpeg;base64," in page
    if benchmark == "mose2":
        assert scores["units"] == "percent" and 0 < scores["overall"]["J&F_new"] < 100
    else:  # the generated set lists one of its two videos as unseen: every LVOS mean is a number
        assert scores["units"] == "fraction" and None not in scores["overall"].values()
