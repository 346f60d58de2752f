"""Training: every stage starts on generated data; resume is exact; errors. (Two-process runs
and kills: test_fault_tolerance.py.)"""

import numpy as np
import pytest
import torch

import train
from datasets.tps import random_tps_warp, tps_apply, tps_fit
from model.checkpoint import read_checkpoint
from model.trainer import NonFiniteLossError
from tests.helpers import args_for, assert_same_weights, fault_args
from util.configuration import STAGES, TrainConfig
from util.errors import CheckpointError, ConfigError, DatasetError


@pytest.mark.slow
def test_stage0_and_stage3_chain(synthetic_root, tmp_path, capsys):
    run0 = train.main(args_for(synthetic_root, tmp_path, stage=0, iterations=2))
    assert "key projection scaled by" in capsys.readouterr().out  # from scratch
    weights = run0 / f"{run0.name}_2.pth"
    assert weights.exists() and (run0 / f"{run0.name}_checkpoint.pth").exists()
    assert read_checkpoint(weights)["value_encoder.conv1.weight"].shape[1] == 4
    run3 = train.main(args_for(synthetic_root, tmp_path, stage=3, iterations=2, extra=["--load_network", str(weights)]))
    assert "key projection scaled" not in capsys.readouterr().out  # starts from stage 0's weights
    assert read_checkpoint(run3 / f"{run3.name}_2.pth")["value_encoder.conv1.weight"].shape[1] == 5
    assert run3 != run0
    # a stage-0 checkpoint cannot resume stage 3
    with pytest.raises(CheckpointError, match="cannot resume stage 3"):
        train.main(
            args_for(
                synthetic_root,
                tmp_path,
                stage=3,
                iterations=4,
                extra=["--load_model", str(run0 / f"{run0.name}_checkpoint.pth")],
            )
        )


@pytest.mark.slow
def test_resume_is_exact(synthetic_root, uninterrupted, tmp_path, capsys):
    """From the uninterrupted run's checkpoint at iteration 2, in our format and in the
    reference's, the resumed runs end where the uninterrupted one ended."""
    (straight,) = list(uninterrupted.iterdir())
    at_2 = read_checkpoint(straight / f"{straight.name}_checkpoint_prev.pth")
    assert at_2["it"] == 2
    ours = tmp_path / "ours" / "run_checkpoint.pth"
    reference = tmp_path / "ref_run" / "gsfm_checkpoint.pth"  # as the reference writes it
    for path, keys in ((ours, at_2), (reference, ("it", "network", "optimizer", "scheduler"))):
        path.parent.mkdir()
        torch.save({k: at_2[k] for k in keys}, path)
    capsys.readouterr()
    resumed = train.main(fault_args(synthetic_root, tmp_path, ["--load_model", str(ours.parent)]))
    assert resumed == ours.parent  # the run folder: its newest readable checkpoint, continued there
    out = capsys.readouterr().out
    assert "reference-format" not in out and "--id t is ignored" in out
    from_reference = train.main(fault_args(synthetic_root, tmp_path, ["--load_model", str(reference)]))
    out = capsys.readouterr().out
    assert "has no scaler or rng state (a reference-format checkpoint)" in out and "not bit-exact" in out
    a = read_checkpoint(straight / f"{straight.name}_checkpoint.pth")
    b = read_checkpoint(resumed / f"{resumed.name}_checkpoint.pth")
    assert a["it"] == b["it"] == 4 and a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 4
    assert_same_weights(a["network"], b["network"])
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    # float32 on the CPU uses no scaler, and the data order depends on no generator state:
    # the reference-format resume ends with the same weights too
    assert_same_weights(read_checkpoint(from_reference / "ref_run_4.pth"), a["network"])


def test_global_batch_size_must_divide():
    with pytest.raises(ConfigError, match="does not divide"):
        TrainConfig(stage=3, global_batch_size=5).batch_per_process(2)
    assert TrainConfig(stage=3, global_batch_size=8, batch_size=1).batch_per_process(2) == 4
    assert TrainConfig(stage=3).batch_per_process(2) == 8  # the reference's batch is per process


def test_stage_presets_fill_what_is_not_given():
    config = TrainConfig(stage=0, lr=1e-3)
    assert (config.lr, config.batch_size, config.iterations, config.steps) == (1e-3, 16, 40000, (20000,))
    assert config.single_object and not TrainConfig(stage=3).single_object
    config, _ = TrainConfig.parse(["--stage", "3", "-b", "2", "--steps", "10", "20", "--no_amp"])
    assert (config.batch_size, config.steps, config.amp, config.end_warm) == (2, (10, 20), False, 15000)
    with pytest.raises(ConfigError, match="--crop_size must be >= 1"):
        TrainConfig(crop_size=0)


@pytest.mark.slow
def test_missing_dataset_root_is_named(synthetic_root, tmp_path):
    args = args_for(synthetic_root, tmp_path, iterations=1)
    args[args.index("--davis_root") + 1] = str(tmp_path / "noDAVIS")
    with pytest.raises(DatasetError, match="noDAVIS/2017/trainval/JPEGImages/480p"):
        train.main(args)


@pytest.mark.slow
def test_empty_dataset_after_subset(synthetic_root, tmp_path):
    (tmp_path / "empty.txt").write_text("nothing\n")
    args = args_for(synthetic_root, tmp_path, iterations=1)
    args[args.index("--davis_subset") + 1] = str(tmp_path / "empty.txt")
    args[args.index("--yv_subset") + 1] = str(tmp_path / "empty.txt")
    with pytest.raises(DatasetError, match="training set is empty"):
        train.main(args)


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_checkpoint(synthetic_root, tmp_path, monkeypatch):
    run = train.main(args_for(synthetic_root, tmp_path, iterations=2))
    ckpt = run / f"{run.name}_checkpoint.pth"
    before = ckpt.read_bytes()
    from model import losses

    monkeypatch.setattr(losses, "BOUNDARY_WEIGHT", float("nan"))
    with pytest.raises(NonFiniteLossError, match="non-finite loss nan at iteration 2"):
        # a longer schedule than the checkpoint's continues it
        train.main(args_for(synthetic_root, tmp_path, iterations=4, extra=["--load_model", str(ckpt)]))
    assert ckpt.read_bytes() == before


def test_curriculum():
    assert [STAGES[3].max_skip(e, 10) for e in range(10)] == [5, 10, 15, 20, 25, 25, 25, 25, 25, 5]
    assert [STAGES[1].max_skip(e, 10) for e in range(10)] == [5, 10, 15, 20, 25, 25, 25, 25, 5, 5]
    assert STAGES[0].max_skip(5, 10) == 5


def test_tps_warp_is_smooth_and_hits_control_points():
    rng = np.random.RandomState(0)
    dst = rng.rand(12, 2)
    src = dst + rng.normal(0, 0.02, dst.shape)
    coef = tps_fit(dst, src)
    assert np.allclose(tps_apply(coef, dst, dst), src, atol=1e-8)
    ys, xs = np.mgrid[0:40, 0:40] / 40
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    mapped = tps_apply(coef, dst, grid).reshape(40, 40, 2)
    # positive Jacobian determinant everywhere: locally invertible, orientation kept
    dx = np.diff(mapped, axis=1)[:-1]
    dy = np.diff(mapped, axis=0)[:, :-1]
    det = dx[..., 0] * dy[..., 1] - dx[..., 1] * dy[..., 0]
    assert (det > 0).all()
    assert np.abs(mapped - np.stack([xs, ys], -1)).max() < 0.2  # a small deformation
    image = (rng.rand(40, 40, 3) * 255).astype(np.uint8)
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 10:30] = 1
    warped_im, warped_mask = random_tps_warp(image, mask, 0.02, rng)
    assert set(np.unique(warped_mask)) <= {0, 1}  # nearest keeps labels
    assert abs(int(warped_mask.sum()) - 400) < 120


def test_training_from_scratch_starts_residual_blocks_as_shortcuts():
    """BatchNorm is frozen (the reference's rule); with fresh statistics it does not
    normalise, so --no_imagenet zero-initialises each residual branch's last BN scale."""
    from model.network import GSFM
    from model.resnet import zero_init_residual_scales

    torch.manual_seed(0)
    net = GSFM().eval()
    frame = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        fresh_keys = net.encode_key(frame).k16
        before = {k: v.clone() for k, v in net.state_dict().items()}
        zero_init_residual_scales(net)
        keys = net.encode_key(frame).k16
    assert fresh_keys.std() > 5  # the similarity softmax would be one-hot
    assert keys.std() < 1
    changed = sorted(k for k, v in net.state_dict().items() if not torch.equal(v, before[k]))
    assert "key_encoder.layer3.5.bn3.weight" in changed and "value_encoder.layer1.0.bn2.weight" in changed
    assert all(k.endswith((".bn3.weight", ".bn2.weight")) for k in changed)
    assert not any(k.startswith("value_encoder") and k.endswith("bn3.weight") for k in changed)
    assert all((net.state_dict()[k] == 0).all() for k in changed)


def test_training_from_scratch_scales_keys_to_unit_std():
    from model.network import GSFM
    from model.trainer import Trainer

    torch.manual_seed(0)
    config = TrainConfig(stage=0, lr=1e-4, weight_decay=0, steps=(10,), amp=False, start_warm=0, end_warm=1)
    trainer = Trainer(GSFM(single_object=True), config, torch.device("cpu"))
    first = {"rgb": torch.randn(2, 3, 3, 32, 32), "gt": (torch.rand(2, 3, 1, 32, 32) > 0.5).float()}
    other = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        before = trainer.network.encode_key(other).k16
        factor = trainer.scale_keys(first)
        after = trainer.network.encode_key(other).k16
        assert trainer.network.encode_key(first["rgb"].flatten(0, 1)).k16.std() == pytest.approx(1.0, rel=1e-4)
    assert factor > 1.5 or factor < 0.67  # the fresh network's keys are far from unit scale
    # only the projection changed: equal up to float32 rounding of the convolution's sums
    assert (after - before * factor).abs().max() <= 1e-5 * (before * factor).abs().max()


def test_batchnorm_stays_frozen_in_train_mode():
    """The reference trains with BatchNorm frozen; here that is the module's invariant."""
    from model.network import GSFM

    net = GSFM().train()
    assert net.training and net.decoder.training
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 58 and not any(m.training for m in bns)
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    net.encode_key(torch.randn(2, 3, 32, 32) * 3 + 1)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())


@pytest.mark.slow
def test_amp_skips_non_finite_steps_then_stops_after_too_many(monkeypatch):
    """Under AMP the gradient scaler skips a step whose gradients are not finite (simulated
    here with the scaler on the CPU); more than --max_amp_skips in a row stop training. In
    float32 a NaN loss stops at once (test_nan_loss_stops_and_keeps_checkpoint)."""
    from model import losses
    from model.network import GSFM
    from model.trainer import Trainer

    torch.manual_seed(0)
    config = TrainConfig(stage=0, lr=1e-3, amp=True, max_amp_skips=2, start_warm=0, end_warm=1)
    trainer = Trainer(GSFM(single_object=True), config, torch.device("cpu"))
    assert not trainer.scaler.is_enabled()  # AMP is for CUDA; the CPU trains in float32
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
    batch = {"rgb": torch.randn(1, 3, 3, 32, 32), "gt": (torch.rand(1, 3, 1, 32, 32) > 0.5).float()}
    batch["cls_gt"] = batch["gt"][:, :, 0].long()
    weights = lambda: trainer.network.decoder.pred.weight.detach().clone()  # noqa: E731

    before = weights()
    monkeypatch.setattr(losses, "BOUNDARY_WEIGHT", float("nan"))
    trainer.step(batch, 0)
    assert trainer.skipped and trainer.consecutive_skips == 1
    assert torch.equal(weights(), before) and trainer.scaler.get_scale() == 2.0**7
    monkeypatch.setattr(losses, "BOUNDARY_WEIGHT", 0.05)
    trainer.step(batch, 1)
    assert not trainer.skipped and trainer.consecutive_skips == 0 and not torch.equal(weights(), before)
    monkeypatch.setattr(losses, "BOUNDARY_WEIGHT", float("nan"))
    trainer.step(batch, 2)
    trainer.step(batch, 3)
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps with non-finite gradients under AMP"):
        trainer.step(batch, 4)


def test_a_step_returns_typed_outputs_that_the_logger_averages():
    """The step's outputs are typed (one ``QueryFrame`` and one loss per segmented frame of a
    CLIP_FRAMES clip); the logger receives them under the reference's log names and averages
    them over an interval, the IoU from the mean counts."""
    from model.network import GSFM
    from model.trainer import Trainer
    from util.configuration import CLIP_FRAMES
    from util.logger import IntervalMeans

    torch.manual_seed(0)
    trainer = Trainer(GSFM(single_object=True), TrainConfig(stage=0, lr=1e-5), torch.device("cpu"))
    batch = {"rgb": torch.randn(2, CLIP_FRAMES, 3, 32, 32), "gt": (torch.rand(2, CLIP_FRAMES, 1, 32, 32) > 0.5).float()}
    batch["cls_gt"] = batch["gt"][:, :, 0].long()
    means = IntervalMeans(torch.device("cpu"))
    results = [trainer.step(batch, it) for it in range(2)]
    for result in results:
        assert len(result.frames) == len(result.losses.frames) == CLIP_FRAMES - 1
        assert torch.equal(result.losses.total, sum(result.losses.frames))
        assert result.losses.sec_iou is None and all(f.sec_mask is None for f in result.frames)
        masks, boundaries = result.images()
        assert [m.shape for m in masks] == [(2, 1, 32, 32)] * (CLIP_FRAMES - 1)
        assert [b.shape for b in boundaries] == [(2, 1, 32, 32)] * (CLIP_FRAMES - 1)
        means.add(result.losses.logged())
    logged = [r.losses for r in results]
    values = means.finalize()
    assert list(values) == ["loss_1", "loss_2", "total_loss", "p", "iou"]
    assert values["loss_2"] == pytest.approx(sum(x.frames[1].item() for x in logged) / 2, rel=1e-6)
    inter = sum(float(x.iou.intersection) for x in logged) / 2
    union = sum(float(x.iou.union) for x in logged) / 2
    assert values["iou"] == pytest.approx((inter + 1) / (union + 1), rel=1e-9)
