"""MOSE, LVOS, VOST and SA-V: the scorers against plain transcriptions of the official tools
(reference/benchmark_metrics.py) on hand-made masks with each tool's edge cases, the
readers on the generated download layouts, and eval_benchmark.py end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import reference.benchmark_metrics as ref
from benchmarks import scoring as bm
from benchmarks.registry import BENCHMARKS
from datasets.synthetic import generate_benchmarks
from util.metrics import statistics
from util.palette import davis_palette

H, W = 24, 32


def _box(y0, y1, x0, x1, value=1, base=None):
    m = np.zeros((H, W), np.uint8) if base is None else base.copy()
    m[y0:y1, x0:x1] = value
    return m


def _write(folder: Path, name: str, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(labels.astype(np.uint8), mode="P")
    img.putpalette(davis_palette())
    img.save(folder / name)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) < 1e-9


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return generate_benchmarks(tmp_path_factory.mktemp("benchmarks"))


# ---- MOSE v2 ------------------------------------------------------------------------------


def _mose2_video():
    """8 frames; object 1 everywhere; object 2 leaves (frames 3-4) and returns; object 3
    absent on the first scored frame, then present. Predictions: shifted boxes, one empty
    frame, object 2 predicted while absent, a large object (adaptive width = DAVIS width)."""
    gt, pred = [], []
    for t in range(8):
        g = _box(2, 10, 2 + t, 12 + t)
        if t not in (3, 4):
            g = _box(14, 20, 20, 26, 2, g)
        if t >= 2:
            g = _box(12, 23, 0, 14, 3, g)
        p = _box(3, 11, 2 + t, 13 + t) if t != 5 else np.zeros((H, W), np.uint8)
        p = _box(14, 21, 19, 26, 2, p)
        if t >= 3:
            p = _box(12, 22, 1, 14, 3, p)
        gt.append(g)
        pred.append(p)
    return np.stack(gt), np.stack(pred)


def test_mose2_scores_equal_the_official_definitions(tmp_path):
    gt, pred = _mose2_video()
    for t in range(len(gt)):
        _write(tmp_path / "gt" / "v", f"{t:05d}.png", gt[t])
        _write(tmp_path / "pred" / "v", f"{t:05d}.png", pred[t])
    meta = {"v": {"length": 8, "objects": ["1", "2", "3"]}}
    ours = bm.score_mose2(tmp_path / "pred", tmp_path / "gt", meta)
    official = ref.mose2_overall([ref.mose2_object(gt, pred, obj) for obj in (1, 2, 3)])
    assert list(ours["overall"]) == bm.MOSE2_METRICS
    for key in bm.MOSE2_METRICS:
        assert _same(ours["overall"][key], official[key]), key
    objects = {o["object"]: o for o in ours["per_object"]}
    assert objects["v_2"]["disappear_J"] is not None and objects["v_2"]["reappear_J"] is not None
    # object 3 is absent on the first scored frame only: that is no disappearance segment
    assert objects["v_3"]["disappear_J"] is None and objects["v_3"]["reappear_J"] is not None
    assert objects["v_1"]["disappear_J"] is None and objects["v_1"]["reappear_J"] is None
    # the smoothed J of an empty prediction against a present object: 1 / (union + 1)
    assert bm.mose2_j(np.zeros((H, W), bool), gt[5] == 1) == pytest.approx(1 / ((gt[5] == 1).sum() + 1))


def test_mose2_adaptive_boundary_width():
    """At 480x640 the DAVIS width is ceil(0.008 * 800) = 7 pixels; a 10x10 object's adaptive
    width is ceil(0.1 * 10) = 1, so a 3-pixel shift matches under F but not under F_new. A
    large or absent object gets the DAVIS width unrounded (6.4: a fractional disk), both F
    equal. On tiny frames (24x32) the fractional disk is empty (as skimage draws it)."""

    def box(shape, y0, y1, x0, x1):
        m = np.zeros(shape, np.uint8)
        m[y0:y1, x0:x1] = 1
        return m

    big = (480, 640)
    cases = [
        (box(big, 50, 60, 53, 63), box(big, 50, 60, 50, 60)),  # small: adaptive width
        (box(big, 0, 400, 10, 510), box(big, 0, 400, 0, 500)),  # large: fractional DAVIS width
        (box(big, 50, 60, 53, 63), np.zeros(big, np.uint8)),  # absent object
        (box((H, W), 5, 9, 7, 11), box((H, W), 5, 9, 5, 9)),
    ]  # tiny frame
    for p, g in cases:
        assert np.allclose(bm.mose2_f(p > 0, g > 0), ref.mose2_f_adaptive(p, g))
    classic, adaptive = bm.mose2_f(cases[0][0] > 0, cases[0][1] > 0)
    assert classic == 1 and adaptive <= 0.5
    classic, adaptive = bm.mose2_f(cases[1][0] > 0, cases[1][1] > 0)
    assert classic == adaptive < 1


# ---- LVOS -----------------------------------------------------------------------------------


def test_lvos_scores_equal_the_official_definitions(tmp_path):
    """Two videos (one unseen); object 2 enters at frame 11; its first and last annotated
    frames are predicted wrongly (excluded), one frame's prediction is empty; object 1's
    range stops before the video ends (predictions after it do not count)."""
    meta = {
        "a": {
            "objects": {
                "1": {"frame_range": {"start": 1, "end": 21, "frame_nums": 4}},
                "2": {"frame_range": {"start": 11, "end": 31, "frame_nums": 4}},
            }
        },
        "b": {"objects": {"1": {"frame_range": {"start": 1, "end": 31, "frame_nums": 6}}}},
    }
    rows = {}
    for video in meta:
        gts, preds = {}, {}
        for frame in range(1, 27):
            g = _box(2, 10, frame % 7, 10 + frame % 7)
            if video == "a" and frame >= 11:
                g = _box(12, 20, 18, 28, 2, g)
            p = _box(3, 10, frame % 7, 11 + frame % 7)
            if video == "a" and frame >= 11:
                p = _box(12, 20, 18, 28, 2, p) if frame not in (11, 26) else p
            if frame == 16:
                p = np.zeros((H, W), np.uint8)
            preds[frame] = p
            _write(tmp_path / "pred" / video, f"{frame:08d}.png", p)
            if frame % 5 == 1:
                gts[frame] = g
                _write(tmp_path / "gt" / video, f"{frame:08d}.png", g)
        rows[video] = (gts, preds)
    ours = bm.score_lvos(tmp_path / "pred", tmp_path / "gt", meta, unseen={"b"})
    objects = [
        ref.lvos_object(*rows["a"], meta["a"]["objects"]["1"]["frame_range"], 1) + (False,),
        ref.lvos_object(*rows["a"], meta["a"]["objects"]["2"]["frame_range"], 2) + (False,),
        ref.lvos_object(*rows["b"], meta["b"]["objects"]["1"]["frame_range"], 1) + (True,),
    ]
    official = ref.lvos_overall(objects)
    assert list(ours["overall"]) == bm.LVOS_METRICS
    for key in bm.LVOS_METRICS:
        assert _same(ours["overall"][key], official[key]), key
    # object 2's wrong first and last frames are not scored; only the empty frame 16 costs
    assert [o["object"] for o in ours["per_object"]] == ["a_1", "a_2", "b_1"]
    a2 = ours["per_object"][1]
    assert a2["J-Mean"] == pytest.approx((0 + 1) / 2)
    # without unseen videos the means over both groups are nan, as the official tool's
    assert math.isnan(bm.score_lvos(tmp_path / "pred", tmp_path / "gt", meta, unseen=set())["overall"]["J&F-Mean"])


def test_lvos_v_rounds_the_variance_first():
    j = np.array([0.5, 0.7, 0.9])
    f = np.array([0.6, 0.6, 0.61])
    assert bm.lvos_v(j, f) == pytest.approx(ref.lvos_var(j[None], f[None]))
    assert bm.lvos_v(j, f) == pytest.approx(math.sqrt(round(float(np.var((j + f) / 2)), 4)))


# ---- VOST -----------------------------------------------------------------------------------


def test_vost_scores_equal_the_official_definitions(tmp_path):
    """255 (void) in the ground truth, first frame included: background to the scorer, so a
    prediction there lowers J; a prediction id beyond the objects is dropped; one empty
    prediction; J_last over the last quarter of the scored frames."""
    gt, pred = [], []
    for t in range(10):
        g = _box(2, 10, t, 10 + t)
        g = _box(14, 20, 20, 26, 2, g)
        g[10:12, :] = 255
        p = _box(2, 12, t, 10 + t)  # covers part of the void band
        p = _box(14, 20, 21, 27, 2, p) if t != 6 else np.zeros((H, W), np.uint8)
        if t == 4:
            p = _box(0, 2, 0, 4, 3, p)  # an id the ground truth does not have
        gt.append(g)
        pred.append(p)
        _write(tmp_path / "gt" / "v", f"{t:05d}.png", g)
        _write(tmp_path / "pred" / "v", f"{t:05d}.png", p)
    ours = bm.score_vost(tmp_path / "pred", tmp_path / "gt", ["v"])
    official = ref.vost_video(np.stack(gt), np.stack(pred))
    assert list(ours["overall"]) == bm.VOST_METRICS
    for obj, (j_stats, last_stats) in enumerate(official):
        row = ours["per_object"][obj]
        assert row["object"] == f"v_{obj + 1}"
        for key, value in zip(bm.VOST_METRICS, j_stats + last_stats):
            assert _same(row[key], value), key
    assert ours["per_object"][0]["J-Mean"] < 1  # the void band predicted as object 1 counts against it


def test_decay_bins_wrap_past_256_frames_as_the_official_tools():
    values = np.random.RandomState(0).rand(300)
    assert np.allclose(statistics(values), ref.db_statistics(values), equal_nan=True)
    assert math.isnan(statistics(values)[2])  # the last bin's bounds wrapped: an empty slice


# ---- SA-V -----------------------------------------------------------------------------------


def test_sav_scores_equal_the_official_definitions(tmp_path):
    """Two overlapping objects (001 inside 000); object 001 is empty in ground truth and
    prediction on the first scored frames (they do not count), one empty prediction; the
    first and last annotated frames are excluded (predicted wrongly here)."""
    frames = [f"{t:05d}.png" for t in range(0, 28, 4)]
    objects = {}
    for obj in ("000", "001"):
        gts, preds = [], []
        for k, name in enumerate(frames):
            if obj == "000":
                g, p = _box(2, 20, 2, 20), _box(3, 20, 2, 21)
            else:
                g = _box(5, 9, 5, 9) if k >= 3 else np.zeros((H, W), np.uint8)
                p = _box(5, 9, 6, 10) if k >= 3 and k != 4 else np.zeros((H, W), np.uint8)
            if k in (0, len(frames) - 1):
                p = np.zeros((H, W), np.uint8)
            gts.append(g)
            preds.append(p)
            _write(tmp_path / "gt" / "v" / obj, name, g)
            _write(tmp_path / "pred" / "v" / obj, name, p)
        objects[obj] = (preds[1:-1], gts[1:-1])
    ours = bm.score_sav(tmp_path / "pred", tmp_path / "gt", ["v"])
    jf, j, f = ref.sav_overall(list(objects.values()))
    assert list(ours["overall"]) == bm.SAV_METRICS
    assert ours["overall"]["J&F"] * 100 == pytest.approx(jf)
    assert ours["overall"]["J"] * 100 == pytest.approx(j)
    assert ours["overall"]["F"] * 100 == pytest.approx(f)
    # object 001: scored from frame 3 on (3 frames of 5), one of them empty
    assert ours["per_object"][1]["J"] < ours["per_object"][1]["F"] <= 1


# ---- readers ---------------------------------------------------------------------------------


def test_lvos_engine_receives_only_first_appearance_masks(data):
    """valid annotates every object on every 5th frame; the inputs are each object's first
    annotation, holding only the objects that appear there."""
    root = data / "LVOS"
    meta = json.loads((root / "valid" / "valid_meta.json").read_text())["videos"]
    for video in BENCHMARKS["lvos"].read(root, "valid", False).videos:
        firsts = {}
        for obj, info in meta[video.name]["objects"].items():
            firsts.setdefault(info["frame_range"]["start"] - 1, []).append(int(obj))
        assert sorted(video.annotations) == sorted(firsts)
        assert len(list((root / "valid" / "Annotations" / video.name).glob("*.png"))) > len(firsts)
        for index in video.annotations:
            labels = video.annotation(index)
            assert sorted(set(np.unique(labels).tolist()) - {0}) == sorted(firsts[index])
            assert any(len(firsts[i]) > 0 for i in firsts if i > 0)  # some object enters later
        fed = {f.index: f.labels for f in video.read() if f.labels is not None}
        assert sorted(fed) == sorted(firsts)


def test_vost_void_is_never_an_object_and_dense_frames_write_the_5fps_ones(data):
    sparse = BENCHMARKS["vost"].read(data / "VOST", "val", False)
    dense = BENCHMARKS["vost"].read(data / "VOST", "val", True)
    for a, b in zip(sparse.videos, dense.videos):
        assert 255 not in a.object_ids and a.object_ids == b.object_ids
        assert 255 not in np.unique(a.annotation(0))
        assert b.num_frames == 2 * a.num_frames
        assert [b.frames.names[i] for i in sorted(b.outputs)] == a.frames.names


def test_sav_input_composes_overlapping_objects(data):
    for video in BENCHMARKS["sav"].read(data / "SAV", "val", False).videos:
        labels = video.annotation(0)
        part = np.array(Image.open(data / "SAV" / "Annotations_6fps" / video.name / "001" / "00000.png")) > 0
        whole = np.array(Image.open(data / "SAV" / "Annotations_6fps" / video.name / "000" / "00000.png")) > 0
        assert (part & whole).any()  # the masks overlap
        assert (labels[part] == 2).all() and (labels[whole & ~part] == 1).all()
        assert sorted(video.outputs) == [0, 4, 8, 12]


def test_lvos_without_meta_finds_first_appearances_in_the_annotations(data, tmp_path):
    import shutil

    shutil.copytree(data / "LVOS", tmp_path / "LVOS")
    (tmp_path / "LVOS" / "valid" / "valid_meta.json").unlink()
    with_meta = BENCHMARKS["lvos"].read(data / "LVOS", "valid", False)
    without = BENCHMARKS["lvos"].read(tmp_path / "LVOS", "valid", False)
    assert without.score is None  # the frame ranges are the meta's
    for a, b in zip(with_meta.videos, without.videos):
        assert sorted(a.annotations) == sorted(b.annotations) and a.input_objects == b.input_objects


def test_help_lists_the_benchmarks_and_bad_choices_are_named(data, tmp_path):
    import eval_benchmark
    from util.errors import ConfigError, DatasetError

    text = eval_benchmark.parser().format_help()
    assert set(eval_benchmark.NAMES) == {"mose", "mose2", "lvos", "lvos2", "vost", "sav"}
    assert all(f"  {name} " in text for name in eval_benchmark.NAMES)
    with pytest.raises(ConfigError, match="valid, train"):
        eval_benchmark.main(
            [
                "--benchmark",
                "mose",
                "--data_path",
                str(data / "MOSE"),
                "--split",
                "val",
                "--model",
                "m.pth",
                "--output",
                str(tmp_path),
            ]
        )
    with pytest.raises(DatasetError, match="JPEGImages_24fps"):
        BENCHMARKS["sav"].read(data / "VOST", "val", False)
    with pytest.raises(ConfigError, match="dense_frames"):
        BENCHMARKS["lvos"].read(data / "LVOS", "valid", True)


# ---- long videos -------------------------------------------------------------------------------


@pytest.mark.slow
def test_rss_grows_only_by_the_memory_bank(tmp_path, golden_weights_file):
    """Frames stream through the engine: over 30 frames of 192x256 (network at 48x64), the
    resident memory grows by no more than the memory bank (computed as scripts.long_video_memory
    does) plus allocator noise, far below what keeping each frame's image and probabilities
    would add (~0.6 MB a frame)."""
    import torch

    from datasets.eval_datasets import generic_video
    from evaluation.video import segment_video
    from model.checkpoint import load_network
    from scripts.benchmarking import make_benchmark_video
    from scripts.long_video_memory import bank_bytes
    from util.configuration import InferenceConfig
    from util.memory import current_memory_mb

    frames, warm = 30, 6
    folder = make_benchmark_video(tmp_path, frames, 1, 192, 256)
    video, _ = generic_video(folder / "frames", folder / "first.png")
    config = InferenceConfig(max_size=48)
    network = load_network(golden_weights_file, torch.device("cpu"))
    rss: list[float] = []
    segment_video(
        network,
        video,
        config,
        on_output=lambda frame: None,
        on_frame=lambda: rss.append(current_memory_mb(torch.device("cpu"))),
    )
    assert len(rss) == frames
    bank_mb = bank_bytes(frames, 1, config, height=48, width=64) / 2**20
    growth = rss[-1] - rss[warm]
    assert growth < bank_mb + 6, (growth, bank_mb, rss)


# ---- eval_benchmark.py end to end ---------------------------------------------------------------


def _run(data: Path, out: Path, weights: Path, benchmark: str, folder: str, split: str, *extra: str) -> Path:
    import eval_benchmark

    eval_benchmark.main(
        [
            "--benchmark",
            benchmark,
            "--data_path",
            str(data / folder),
            "--split",
            split,
            "--model",
            str(weights),
            "--output",
            str(out / benchmark),
            "--device",
            "cpu",
            "--size",
            "-1",
            *extra,
        ]
    )
    return out / benchmark


def _stack(folder: Path, names: list[str]) -> np.ndarray:
    return np.stack([np.array(Image.open(folder / n)) for n in names])


def _scores(out: Path) -> dict:
    scores = json.loads((out / "scores.json").read_text())
    scale = 100 if scores["units"] == "percent" else 1  # MOSE v2 and SA-V: percent, as their tools print
    return {k: (math.nan if v is None else v / scale) for k, v in scores["overall"].items()}


@pytest.mark.slow
def test_mose_and_mose2_end_to_end(data, tmp_path, golden_weights_file):
    root = data / "MOSE"
    for benchmark in ("mose", "mose2"):
        out = _run(data, tmp_path, golden_weights_file, benchmark, "MOSE", "train")
        overall = _scores(out)
        assert list(overall) == (
            list(BENCHMARKS[benchmark].metrics)
            if benchmark == "mose2"
            else ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay", "J&F-Mean"]
        )
        results = []
        for video in sorted(p.name for p in (root / "train" / "JPEGImages").iterdir()):
            names = sorted(p.with_suffix(".png").name for p in (root / "train" / "JPEGImages" / video).iterdir())
            assert sorted(p.name for p in (out / video).iterdir()) == names  # every frame
            gt, pred = _stack(root / "train" / "Annotations" / video, names), _stack(out / video, names)
            results += [ref.mose2_object(gt, pred, obj) for obj in (1, 2)]
        if benchmark == "mose2":
            official = ref.mose2_overall(results)
            for key in official:
                assert _same(overall[key], official[key]), key
            assert not math.isnan(overall["disappear_J&F_new"])  # an object leaves and returns
    # valid: first-frame annotations only: a server zip of the video folders, no scores
    out = _run(data, tmp_path / "valid", golden_weights_file, "mose", "MOSE", "valid")
    assert not (out / "scores.json").exists()
    import zipfile

    with zipfile.ZipFile(out / "submission.zip") as zf:
        assert sorted(zf.namelist()) == [f"mosevalid0/{t:05d}.png" for t in range(9)]


@pytest.mark.slow
def test_lvos_end_to_end_receives_first_appearances_only(data, tmp_path, golden_weights_file, monkeypatch):
    import inference_core

    fed: list[tuple[int, list[int]]] = []
    step = inference_core.InferenceCore.step

    def spy(self, image, mask=None, *args, **kwargs):
        if mask is not None:
            fed.append((self.frame_index + 1, sorted(set(np.unique(mask).tolist()) - {0})))
        return step(self, image, mask, *args, **kwargs)

    monkeypatch.setattr(inference_core.InferenceCore, "step", spy)
    out = _run(data, tmp_path, golden_weights_file, "lvos", "LVOS", "valid")
    root = data / "LVOS" / "valid"
    meta = json.loads((root / "valid_meta.json").read_text())["videos"]
    expected = []
    for video in sorted(meta):
        firsts: dict[int, list[int]] = {}
        for obj, info in meta[video]["objects"].items():
            firsts.setdefault(info["frame_range"]["start"] - 1, []).append(int(obj))
        expected += sorted((index, sorted(ids)) for index, ids in firsts.items())
    assert sorted(fed) == sorted(expected)
    unseen = set((root / "unseen_videos.txt").read_text().split())
    # LVOS v2 has v1's layout, protocol and official scorer: each run against the oracle on its own masks
    for benchmark, folder in (
        ("lvos", out),
        ("lvos2", _run(data, tmp_path, golden_weights_file, "lvos2", "LVOS", "valid")),
    ):
        objects = []
        for video in sorted(meta):
            names = sorted(p.with_suffix(".png").name for p in (root / "JPEGImages" / video).iterdir())
            assert sorted(p.name for p in (folder / video).iterdir()) == names and names[0] == "00000001.png"
            gts = {int(p.stem): np.array(Image.open(p)) for p in (root / "Annotations" / video).glob("*.png")}
            preds = {int(n[:-4]): np.array(Image.open(folder / video / n)) for n in names}
            for obj, info in meta[video]["objects"].items():
                objects.append(ref.lvos_object(gts, preds, info["frame_range"], int(obj)) + (video in unseen,))
        official = ref.lvos_overall(objects)
        overall = _scores(folder)
        assert list(overall) == bm.LVOS_METRICS, benchmark
        for key in official:
            assert _same(overall[key], official[key]), (benchmark, key)
        assert (folder / "submission.zip").is_file()


@pytest.mark.slow
def test_vost_end_to_end_10fps_inference_5fps_scores(data, tmp_path, golden_weights_file):
    out = _run(data, tmp_path, golden_weights_file, "vost", "VOST", "val", "--dense_frames")
    root = data / "VOST"
    overall = _scores(out)
    assert list(overall) == bm.VOST_METRICS
    per_object = []
    for video in ("vost0", "vost1"):
        names = sorted(p.name for p in (root / "Annotations" / video).iterdir())
        assert sorted(p.name for p in (out / video).iterdir()) == names  # the 5 fps frames only
        pred = _stack(out / video, names)
        assert 255 not in pred
        per_object += ref.vost_video(_stack(root / "Annotations" / video, names), pred)
    assert overall["J-Mean"] == pytest.approx(np.mean([o[0][0] for o in per_object]))
    assert overall["J_last-Mean"] == pytest.approx(np.mean([o[1][0] for o in per_object]))


@pytest.mark.slow
def test_sav_end_to_end_per_object_pngs(data, tmp_path, golden_weights_file):
    out = _run(data, tmp_path, golden_weights_file, "sav", "SAV", "val")
    root = data / "SAV" / "Annotations_6fps"
    objects = []
    for video in ("sav_000001", "sav_000002"):
        for obj in ("000", "001"):
            names = sorted(p.name for p in (root / video / obj).iterdir())
            assert sorted(p.name for p in (out / video / obj).iterdir()) == names  # the annotated frames
            pred = _stack(out / video / obj, names)
            assert set(np.unique(pred).tolist()) <= {0, 255}
            objects.append((list(pred[1:-1]), list(_stack(root / video / obj, names)[1:-1])))
    jf, j, f = ref.sav_overall(objects)
    overall = _scores(out)
    assert list(overall) == bm.SAV_METRICS
    assert overall["J&F"] * 100 == pytest.approx(jf) and overall["J"] * 100 == pytest.approx(j)
    assert overall["F"] * 100 == pytest.approx(f)


# ---- the registry ------------------------------------------------------------------------------


def test_registry_covers_every_evaluation_with_its_recorded_protocol(synthetic_root):
    from benchmarks.registry import prepare
    from evaluation.sinks import DavisScores, Submission
    from util.errors import ConfigError

    assert set(BENCHMARKS) == {"davis2016", "davis2017", "youtube-vos", "mose", "mose2", "lvos", "lvos2", "vost", "sav"}
    d17 = prepare("davis2017", synthetic_root / "DAVIS" / "2017")
    assert d17.protocol == {"benchmark": "davis2017", "split": "val"}  # what eval_davis.py always recorded
    assert isinstance(d17.sink, DavisScores) and not d17.sink.binary and d17.videos
    d16 = prepare("davis2016", synthetic_root / "DAVIS" / "2016")
    assert d16.protocol == {"benchmark": "davis2016", "split": "val"}
    assert isinstance(d16.sink, DavisScores) and d16.sink.binary and all(v.binary for v in d16.videos)
    assert BENCHMARKS["davis2016"].inference_defaults == {"top_k": 20}
    yv = prepare("youtube-vos", synthetic_root / "YouTube", output_all=False, sparse_frames=False)
    assert isinstance(yv.sink, Submission) and yv.sink.masks_subdir == "Annotations"
    with pytest.raises(ConfigError, match="val, testdev, test-challenge"):
        prepare("davis2017", synthetic_root / "DAVIS" / "2017", "train")


def test_registry_sinks_of_the_other_benchmarks(data):
    from benchmarks.registry import prepare
    from evaluation.sinks import BenchmarkOutputs

    zipped = {"mose", "mose2", "lvos", "lvos2"}
    for name, folder, split in (("mose", "MOSE", "train"), ("lvos", "LVOS", "valid"), ("sav", "SAV", "val")):
        job = prepare(name, data / folder, split, dense_frames=False)
        assert job.protocol == {"benchmark": name, "split": split, "dense_frames": False}
        assert isinstance(job.sink, BenchmarkOutputs) and job.sink.target is not None
        assert job.sink.submission_zip == (name in zipped) and job.sink.per_object_png == (name == "sav")
