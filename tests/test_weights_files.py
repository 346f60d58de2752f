"""A finished run keeps weights only: its full checkpoint goes unless --keep_checkpoint, it
names its final weights, and rerunning its command with --resume auto does not train it again."""

import pytest

import train
from model.training_run import TrainingRun
from tests.helpers import train_config
from util.errors import ConfigError

pytestmark = pytest.mark.slow


def test_finished_run_keeps_weights_only(synthetic_root, tmp_path, capsys):
    config = train_config(synthetic_root, tmp_path, iterations=2, keep_checkpoint=False)
    run = train.train(config)
    final = run / f"{run.name}_2.pth"
    assert sorted(p.name for p in run.glob("*.pth")) == [final.name]
    assert f"final weights: {final}" in capsys.readouterr().out
    again = train_config(synthetic_root, tmp_path, iterations=2, keep_checkpoint=False, resume="auto")
    with pytest.raises(ConfigError, match=f"run 't' has finished, its final weights are {final}"):
        TrainingRun(again, main_process=True)
