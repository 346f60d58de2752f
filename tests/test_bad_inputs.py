"""Bad inputs not covered elsewhere (docs/FAULTS.md lists every case and its test):
frames and masks in unusual formats, folders with stray files, arguments out of range,
checkpoints saved on CUDA."""

import shutil
import struct
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import eval_davis
import eval_generic
import eval_youtube
from inference_core import InferenceCore
from model.checkpoint import read_checkpoint
from tests.golden import golden_network
from tests.helpers import random_clip, user_video
from util.cli import run as cli_run
from util.configuration import InferenceConfig
from util.palette import davis_palette, read_mask


def generic(tmp_path, golden_weights_file, frames, mask, *extra):
    out = tmp_path / "out"
    cli_run(
        lambda: eval_generic.main(
            [
                "--model",
                str(golden_weights_file),
                "--frames",
                str(frames),
                "--mask",
                str(mask),
                "--output",
                str(out),
                "--device",
                "cpu",
                *map(str, extra),
            ]
        )
    )
    return out


def expect_exit(fn, match):
    with pytest.raises(SystemExit) as e:
        fn()
    assert match in str(e.value), str(e.value)


def test_empty_frame_folder(golden_weights_file, synthetic_root, tmp_path):
    _, mask = user_video(synthetic_root, tmp_path)
    (tmp_path / "empty").mkdir()
    expect_exit(lambda: generic(tmp_path, golden_weights_file, tmp_path / "empty", mask), "no frames (.jpg/.png)")


@pytest.mark.slow
def test_frame_and_mask_sizes_disagree(golden_weights_file, synthetic_root, tmp_path):
    frames, mask = user_video(synthetic_root, tmp_path)
    odd = sorted(frames.glob("*.jpg"))[2]
    Image.open(odd).resize((50, 40)).save(odd)
    expect_exit(
        lambda: generic(tmp_path, golden_weights_file, frames, mask),
        "00002.jpg: frame size 50x40 differs from the first frame's 96x64",
    )
    assert not (tmp_path / "out" / "frames").exists()


@pytest.mark.slow
def test_stray_files_grey_and_rgba_frames_are_handled(golden_weights_file, synthetic_root, tmp_path):
    frames, mask = user_video(synthetic_root, tmp_path)
    (frames / "notes.txt").write_text("not a frame")
    (frames / ".DS_Store").write_bytes(b"\0\1")
    files = sorted(frames.glob("*.jpg"))
    Image.open(files[1]).convert("L").save(files[1])
    Image.open(files[2]).convert("RGBA").save(files[2].with_suffix(".png"))
    files[2].unlink()
    out = generic(tmp_path, golden_weights_file, frames, mask)
    written = sorted(p.name for p in (out / "frames").glob("*.png"))
    assert written == ["00000.png", "00001.png", "00002.png", "00003.png"]


def test_sixteen_bit_masks(tmp_path):
    labels = np.zeros((8, 8), np.uint16)
    labels[2:5, 2:5] = 3
    Image.fromarray(labels).save(tmp_path / "ok.png")
    assert read_mask(tmp_path / "ok.png").tolist() == labels.tolist()
    labels[0, 0] = 300
    Image.fromarray(labels).save(tmp_path / "big.png")
    with pytest.raises(ValueError, match="big.png: 16-bit mask with ids up to 300"):
        read_mask(tmp_path / "big.png")


def write_png_with_palette(path, labels: np.ndarray, palette: list[int]) -> None:
    """An indexed PNG written byte by byte: PIL itself would renumber ids beyond the palette."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = labels.shape
    rows = b"".join(b"\0" + row.tobytes() for row in labels.astype(np.uint8))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
        + chunk(b"PLTE", bytes(palette))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.mark.slow
def test_ids_beyond_a_short_palette_stay_objects(golden_weights_file, synthetic_root, tmp_path):
    frames, _ = user_video(synthetic_root, tmp_path)
    labels = np.zeros((64, 96), np.uint8)
    labels[10:30, 10:40] = 7
    write_png_with_palette(tmp_path / "short_palette.png", labels, [0, 0, 0, 255, 0, 0])  # id 7 has no colour
    out = generic(tmp_path, golden_weights_file, frames, tmp_path / "short_palette.png")
    assert set(np.unique(read_mask(out / "frames" / "00000.png"))) == {0, 7}


def test_rgb_colour_masks_become_ids(tmp_path):
    rgb = np.zeros((6, 6, 3), np.uint8)
    rgb[:2] = davis_palette()[3:6]  # DAVIS colour of id 1
    rgb[4:] = davis_palette()[6:9]  # id 2
    Image.fromarray(rgb).save(tmp_path / "davis_colours.png")
    assert np.unique(read_mask(tmp_path / "davis_colours.png")).tolist() == [0, 1, 2]
    rgb[4:] = (255, 255, 255)  # a colour outside the palette: colours are numbered in order
    Image.fromarray(rgb).save(tmp_path / "own_colours.png")
    assert np.unique(read_mask(tmp_path / "own_colours.png")).tolist() == [0, 1, 2]


def test_unknown_split_is_refused(golden_weights_file, synthetic_root, tmp_path, capsys):
    with pytest.raises(SystemExit):
        eval_davis.main(
            [
                "--model",
                str(golden_weights_file),
                "--davis_path",
                str(synthetic_root),
                "--output",
                str(tmp_path),
                "--split",
                "train",
            ]
        )
    assert "invalid choice: 'train' (choose from" in capsys.readouterr().err


def test_youtube_meta_json_missing_or_broken(golden_weights_file, synthetic_root, tmp_path):
    yv = tmp_path / "YouTube"
    shutil.copytree(synthetic_root / "YouTube" / "valid", yv / "valid")
    args = [
        "--model",
        str(golden_weights_file),
        "--yv_path",
        str(yv),
        "--output",
        str(tmp_path / "o"),
        "--device",
        "cpu",
    ]
    (yv / "valid" / "meta.json").write_text("{not json")
    expect_exit(lambda: cli_run(lambda: eval_youtube.main(args)), "meta.json: not a YouTube-VOS meta.json")
    (yv / "valid" / "meta.json").unlink()
    expect_exit(lambda: cli_run(lambda: eval_youtube.main(args)), "meta.json: YouTube-VOS meta.json not found")
    assert not (tmp_path / "o" / "submission.zip").exists()


def test_top_k_larger_than_memory_is_the_full_softmax():
    net = golden_network()
    frames, mask = random_clip(frames=3)
    results = []
    for top_k in (16, 10**6):  # the memory holds 16 positions (one 4x4 frame)
        core = InferenceCore(net, InferenceConfig(top_k=top_k, mem_every=5))
        results.append([core.step(frames[t], mask if t == 0 else None, end=t == 2) for t in range(3)])
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_checkpoint_saved_on_cuda_loads_on_cpu(tmp_path):
    """A file whose tensors were saved from a GPU (storage location 'cuda:0')."""
    from torch.utils.serialization import config

    state = {"value_encoder.conv1.weight": torch.ones(2, 2)}
    previous, config.save.compute_crc32 = config.save.compute_crc32, True  # zipfile below checks the CRCs
    try:
        torch.save(state, tmp_path / "cpu.pth")
    finally:
        config.save.compute_crc32 = previous
    with zipfile.ZipFile(tmp_path / "cpu.pth") as src, zipfile.ZipFile(tmp_path / "cuda.pth", "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("data.pkl"):
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
                assert b"cuda:0" in data
            dst.writestr(name, data)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(tmp_path / "cuda.pth", weights_only=True)  # what a plain load does on a CPU machine
    loaded = read_checkpoint(tmp_path / "cuda.pth")
    assert loaded["value_encoder.conv1.weight"].device.type == "cpu"
    assert torch.equal(loaded["value_encoder.conv1.weight"], state["value_encoder.conv1.weight"])
