"""Names read from list and meta files never lead outside their folders, and --overwrite
deletes only inside --output."""

import json
import shutil

import pytest

import eval_davis
import eval_youtube
from benchmarks.readers import read_lvos
from util.cli import run as cli_run
from util.errors import DatasetError
from util.paths import checked_name, remove_tree_inside


@pytest.mark.parametrize("name", ["../x", "..", ".", "", "a/b", "a\\b", "/abs", "C:\\x"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(DatasetError, match="list.txt: .* is not a plain video name"):
        checked_name(name, "list.txt")


@pytest.mark.parametrize("name", ["bike-packing", "0a49f5265b", "val.01", "a b"])
def test_plain_names_pass(name):
    assert checked_name(name, "list.txt") == name


def victim(tmp_path):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "keep.txt").write_text("precious")
    return folder


def test_davis_list_naming_a_parent_is_refused_before_any_path(synthetic_root, tmp_path):
    davis = tmp_path / "DAVIS"
    shutil.copytree(synthetic_root / "DAVIS" / "2017" / "trainval", davis / "trainval")
    (davis / "trainval" / "ImageSets" / "2017" / "val.txt").write_text("val00\n../x\n")
    out = tmp_path / "out"
    # a folder the bad name would reach from --output, and one it would reach from the frames
    target = victim(tmp_path)
    shutil.copytree(davis / "trainval" / "JPEGImages" / "480p" / "val00", davis / "trainval" / "JPEGImages" / "x")
    with pytest.raises(SystemExit) as e:
        cli_run(
            lambda: eval_davis.main(
                ["--davis_path", str(davis), "--output", str(out), "--overwrite", "--device", "cpu"]
            )
        )
    assert "val.txt: '../x' is not a plain video name" in str(e.value)
    assert (target / "keep.txt").read_text() == "precious" and not out.exists()


def test_youtube_meta_naming_a_parent_is_refused(synthetic_root, tmp_path):
    yv = tmp_path / "YouTube"
    shutil.copytree(synthetic_root / "YouTube" / "valid", yv / "valid")
    meta = json.loads((yv / "valid" / "meta.json").read_text())
    meta["videos"]["../x"] = next(iter(meta["videos"].values()))
    (yv / "valid" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match=r"meta.json: '../x' is not a plain video name"):
        cli_run(lambda: eval_youtube.main(["--yv_path", str(yv), "--output", str(tmp_path / "o"), "--sparse_frames"]))


def test_benchmark_meta_naming_an_absolute_path_is_refused(tmp_path):
    split = tmp_path / "valid"
    for sub in ("JPEGImages", "Annotations"):
        (split / sub).mkdir(parents=True)
    (split / "valid_meta.json").write_text(json.dumps({"videos": {"/etc": {"objects": {}}}}))
    with pytest.raises(DatasetError, match=r"valid_meta.json: '/etc' is not a plain video name"):
        read_lvos(tmp_path, "valid")


def test_removal_outside_the_root_is_refused(tmp_path):
    target = victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(target, target_is_directory=True)
    for path in (out / "link", out / ".." / "x", out):
        with pytest.raises(DatasetError, match="refusing to delete, it is not inside"):
            remove_tree_inside(out, path)
    assert (target / "keep.txt").read_text() == "precious"
    (out / "video").mkdir()
    (out / "video" / "00000.png").write_bytes(b"")
    remove_tree_inside(out, out / "video")
    assert not (out / "video").exists() and out.is_dir()
