"""Two-process training (torchrun, gloo on CPU): the logged curves are interval means over
both ranks; a SIGTERM to the job and a killed rank are resumed with --resume auto, ending
with the uninterrupted run's weights."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from model.checkpoint import read_checkpoint
from tests.helpers import (
    ENV_ONE_THREAD,
    ITERATIONS,
    REPO,
    assert_same_weights,
    fault_args,
    final_weights,
    rank_pid,
    run_ok,
    torchrun_cmd,
    wait_for,
)

pytestmark = pytest.mark.slow

# train.py, with each rank's per-iteration losses written down (and checkpoints without CRC,
# as tests/train_for_tests.py)
RECORDING = textwrap.dedent("""
    import json, os, sys
    from torch.utils.serialization import config
    import train
    from model.trainer import Trainer
    config.save.compute_crc32 = False
    step = Trainer.step
    def recorded(self, data, it):
        result = step(self, data, it)
        losses = result.losses.logged()
        keys = ("loss_1", "loss_2", "total_loss", "p", "hide_iou/i", "hide_iou/u", "hide_iou/sec_i", "hide_iou/sec_u")
        with open(os.path.join(os.environ["RECORD_DIR"], f"rank{os.environ['RANK']}.jsonl"), "a") as f:
            f.write(json.dumps({"it": it, **{k: float(losses[k]) for k in keys if k in losses}}) + "\\n")
        return result
    Trainer.step = recorded
    train.main(sys.argv[1:])
""")


@pytest.fixture(scope="module")
def straight(synthetic_root, tmp_path_factory):
    """An uninterrupted 2-process run (log interval 2), each rank's losses recorded."""
    folder = tmp_path_factory.mktemp("straight2")
    script = folder / "recording_train.py"
    script.write_text(RECORDING)
    env = dict(ENV_ONE_THREAD, RECORD_DIR=str(folder), PYTHONPATH=str(REPO))  # the script is outside the repository
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29534",
        str(script),
        *fault_args(synthetic_root, folder / "saves", ["--log_text_interval", "2"]),
    ]
    result = run_ok(cmd, env)
    assert "1 per process x 2 processes = 2 global" in result.stdout
    records = [[json.loads(line) for line in (folder / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    return folder / "saves", records


def test_logged_values_are_interval_means_over_ranks(straight):
    saves, records = straight
    (run,) = list(saves.iterdir())
    logged = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert [entry["it"] for entry in logged] == [2, 4]
    assert [r["it"] for r in records[0]] == [r["it"] for r in records[1]] == list(range(ITERATIONS))
    assert records[0] != records[1]  # the ranks saw different samples
    for entry in logged:
        window = [r for rank in records for r in rank if entry["it"] - 2 <= r["it"] < entry["it"]]
        assert len(window) == 4  # 2 iterations x 2 ranks
        mean = {k: sum(r[k] for r in window) / len(window) for k in window[0] if k != "it"}
        for key in ("loss_1", "loss_2", "total_loss", "p"):
            assert entry[key] == pytest.approx(mean[key], rel=1e-6), key
        assert entry["iou"] == pytest.approx((mean["hide_iou/i"] + 1) / (mean["hide_iou/u"] + 1), rel=1e-6)
        assert entry["sec_iou"] == pytest.approx((mean["hide_iou/sec_i"] + 1) / (mean["hide_iou/sec_u"] + 1), rel=1e-6)
        assert entry["seconds_per_it"] > 0 and entry["lr"] > 0
        assert entry["eta_seconds"] == pytest.approx((ITERATIONS - entry["it"]) * entry["seconds_per_it"], abs=1)
    ckpt = read_checkpoint(run / f"{run.name}_checkpoint.pth")
    assert len(ckpt["rng"]) == 2  # both ranks' generator states
    assert ckpt["rank_weight_sums"][0] == ckpt["rank_weight_sums"][1]  # the replicas agree


def test_sigterm_then_a_killed_rank_then_resume_auto(synthetic_root, straight, tmp_path):
    """The cluster's SIGTERM to the launcher reaches both ranks: they agree on an iteration,
    write a full checkpoint there and exit non-zero. The resumed run then loses a rank
    (SIGKILL): torchrun stops the other one. The third run ends with the weights of the run
    nothing interrupted."""
    no_saves = ["--save_network_interval", "100", "--save_checkpoint_interval", "100"]
    metrics = lambda: list(tmp_path.glob("*/logs/metrics.jsonl"))  # noqa: E731
    logged = lambda: len(metrics()[0].read_text().splitlines()) if metrics() else 0  # noqa: E731

    launcher = subprocess.Popen(
        torchrun_cmd(synthetic_root, tmp_path, 29537, no_saves),
        env=ENV_ONE_THREAD,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: logged() >= 2, launcher)
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=300)
    assert launcher.returncode != 0 and "stopped by SIGTERM at iteration" in stderr
    (run,) = list(tmp_path.iterdir())
    stopped_at = read_checkpoint(run / f"{run.name}_checkpoint.pth")["it"]
    assert 2 <= stopped_at < ITERATIONS and not (run / f"{run.name}_{ITERATIONS}.pth").exists()

    resumed = [*no_saves, "--resume", "auto"]
    launcher = subprocess.Popen(
        torchrun_cmd(synthetic_root, tmp_path, 29538, resumed),
        env=ENV_ONE_THREAD,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lines = logged()
    wait_for(lambda: logged() > lines, launcher)  # one more iteration done
    os.kill(rank_pid(launcher, 1), signal.SIGKILL)
    assert launcher.wait(timeout=300) != 0  # torchrun stops the other rank and fails
    assert not (run / f"{run.name}_{ITERATIONS}.pth").exists()

    run_ok(torchrun_cmd(synthetic_root, tmp_path, 29539, resumed), ENV_ONE_THREAD)
    assert list(tmp_path.iterdir()) == [run]  # continued in the same run folder
    assert_same_weights(final_weights(tmp_path), final_weights(straight[0]))
