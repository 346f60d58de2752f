"""Runs that must not quietly do something other than what was asked: resuming another
run or with other settings, saving nothing, ImageNet weights nobody needs, preparation
rules other than the reference's, version floors and pins."""
import dataclasses
import os

import pytest
import torch

import train
from model.checkpoint import read_checkpoint
from model.training_run import find_resume_checkpoint, training_differences
from tests.helpers import args_for, offline_download
from util.configuration import TrainConfig
from util.errors import CheckpointError, ConfigError


def train_args(root, save_root, run_id="t", iterations=2, extra=()):
    """args_for with another --id (None: no --id at all) and ImageNet left to the run."""
    args = [a for a in args_for(root, save_root, iterations=iterations) if a != "--no_imagenet"]
    position = args.index("--id")
    del args[position:position + 2]
    return args + (["--id", run_id] if run_id is not None else []) + list(extra)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch cache and no network: any download fails (and is counted)."""
    cache, attempts = tmp_path / "torch_home", []
    cache.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(cache))

    def download(url, *args, **kwargs):
        attempts.append(url)
        offline_download(url)
    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    return cache, attempts


@pytest.mark.slow
def test_resume_auto_matches_the_id_exactly_and_refuses_other_settings(synthetic_root, golden_weights_file,
                                                                       offline, tmp_path, capsys):
    saves = tmp_path / "saves"
    start = ["--load_network", str(golden_weights_file)]
    s0 = train.main(train_args(synthetic_root, saves, "s0", extra=start))
    # a newer run whose id ends the same way, at another iteration
    ablation = saves / s0.name.replace("_s0", "_ablation_s0")
    ablation.mkdir()
    checkpoint = read_checkpoint(s0 / f"{s0.name}_checkpoint.pth")
    torch.save({**checkpoint, "it": 1}, ablation / f"{ablation.name}_checkpoint.pth")
    assert find_resume_checkpoint(saves, "s0") == s0 / f"{s0.name}_checkpoint.pth"
    assert find_resume_checkpoint(saves, "ablation_s0") == ablation / f"{ablation.name}_checkpoint.pth"
    assert find_resume_checkpoint(saves, "0") is None

    capsys.readouterr()
    assert train.main(train_args(synthetic_root, saves, "s0", extra=["--resume", "auto"])) == s0
    assert f"resumed {s0} at iteration 2" in capsys.readouterr().out

    with pytest.raises(ConfigError, match=r"(?s)trained with other settings.*--lr: 4e-05 in the checkpoint, "
                                          r"0\.001 now.*--resume_anyway") as refused:
        train.main(train_args(synthetic_root, saves, "s0", extra=["--resume", "auto", "--lr", "1e-3"]))
    assert str(s0) in str(refused.value) and "--iterations" not in str(refused.value)
    assert train.main(train_args(synthetic_root, saves, "s0", extra=["--resume", "auto", "--lr", "1e-3",
                                                                     "--resume_anyway"])) == s0
    assert "--resume_anyway" in capsys.readouterr().out
    assert not os.listdir(offline[0]) and not offline[1]  # a resume needs no ImageNet weights

    # the reference's layout: saves/<id>/<id>_checkpoint.pth
    reference = saves / "ref"
    reference.mkdir()
    torch.save({k: checkpoint[k] for k in ("it", "network", "optimizer", "scheduler")},
               reference / "ref_checkpoint.pth")
    assert find_resume_checkpoint(saves, "ref") == reference / "ref_checkpoint.pth"


def test_training_differences_name_each_setting_and_the_global_batch():
    recorded = {"config": dataclasses.asdict(TrainConfig(stage=3, id="a", davis_root="data/DAVIS")),
                "rng": [{}, {}]}  # two processes
    same = TrainConfig(stage=3, id="b", davis_root="data/DAVIS/", num_workers=0, device="cpu", amp=False)
    assert training_differences(recorded, same, world_size=2) == []
    other = TrainConfig(stage=3, id="a", davis_root="/elsewhere", steps=(10, 20), iterations=100)
    assert training_differences(recorded, other, world_size=1) == [
        "--davis_root: data/DAVIS in the checkpoint, /elsewhere now",
        "--iterations: 30000 in the checkpoint, 100 now",
        "--steps: 25000 in the checkpoint, 10 20 now",
        "batch: 8 per process x 2 processes in the checkpoint, 8 x 1 now"]
    assert training_differences(recorded, TrainConfig(stage=3, global_batch_size=16), world_size=2) == []
    assert training_differences({"it": 5}, other, world_size=1) == []  # the reference's: nothing recorded


@pytest.mark.slow
def test_a_run_without_id_saves_under_a_generated_one(synthetic_root, offline, tmp_path, capsys):
    run = train.main(train_args(synthetic_root, tmp_path, None, iterations=1, extra=["--no_imagenet"]))
    assert run.parent == tmp_path and run.name.endswith("_stage3")
    assert read_checkpoint(run / f"{run.name}_checkpoint.pth")["it"] == 1
    out = capsys.readouterr().out
    assert f"no --id given: run 'stage3', saved in {run}" in out
    assert train.main(train_args(synthetic_root, tmp_path / "none", "NULL", iterations=1,
                                 extra=["--no_imagenet"])) is None
    assert "--id NULL: nothing is saved" in capsys.readouterr().out
    assert not (tmp_path / "none").exists() or not os.listdir(tmp_path / "none")
    with pytest.raises(ConfigError, match="needs the --id"):
        TrainConfig.parse(["--resume", "auto"])


@pytest.mark.slow
def test_load_network_needs_no_imagenet_weights_offline(synthetic_root, golden_weights_file, offline, tmp_path):
    cache, attempts = offline
    run = train.main(train_args(synthetic_root, tmp_path, iterations=1,
                                extra=["--load_network", str(golden_weights_file)]))
    assert read_checkpoint(run / f"{run.name}_checkpoint.pth")["it"] == 1
    assert not attempts and not os.listdir(cache)
    # without other weights they are downloaded; offline, one error says what to do
    with pytest.raises(CheckpointError) as offline_error:
        train.main(train_args(synthetic_root, tmp_path / "fresh", iterations=1))
    message = str(offline_error.value)
    assert len(attempts) == 1 and "the download failed" in message and "--no_imagenet" in message
    for name in ("resnet50-0676ba61.pth", "resnet18-f37072fd.pth"):
        assert str(cache / "hub" / "checkpoints" / name) in message
    assert not (tmp_path / "fresh").exists() or not os.listdir(tmp_path / "fresh")  # no empty run folder
