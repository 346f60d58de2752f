"""The README's first command, in its minute-long form: its pictures and scores, what it
says about them, earlier runs kept, and a stopped run continued to the same weights."""

import json
import os
import signal

import pytest
from PIL import Image

import demo
import train
from model.checkpoint import read_checkpoint
from model.trainer import Trainer
from tests.helpers import assert_same_weights
from util.overlay import LABEL_HEIGHT

pytestmark = pytest.mark.slow


def test_quick_demo_keeps_runs_and_resumes_after_sigterm(tmp_path, monkeypatch, capsys):
    args = ["--quick", "--root", str(tmp_path / "data"), "--output", str(tmp_path / "out")]
    summary = demo.main(args)
    (first,) = (tmp_path / "out").iterdir()
    assert 0.0 <= summary["model_jf"] <= 1.0
    assert 0.0 < summary["baseline_jf"] <= 1.0
    assert json.loads((first / "summary.json").read_text())["stamp"]["commit"] == summary["stamp"]["commit"]
    assert json.loads((first / "masks" / "jf_results.json").read_text())["overall"]["J&F-Mean"] == summary["model_jf"]
    gifs = sorted((first / "overlays").glob("*.gif"))
    assert [g.stem for g in gifs] == ["val00", "val01"]
    with Image.open(gifs[0]) as gif:
        assert gif.n_frames == 6
    with Image.open(first / "overlays" / "contact_sheet.png") as sheet:  # 6 frames of 96 x 64 and labels
        assert sheet.size[0] > 6 * 96 and sheet.size[1] > 2 * 64 + LABEL_HEIGHT
    said = capsys.readouterr().out
    weights = first / "saves" / summary["model"].split("/saves/")[1]
    assert f"trained weights: {weights}" in said and "know only the demo's synthetic shapes" in said
    assert "near 0, below the baseline, is expected" in said
    assert sorted(p.name for p in weights.parent.glob("*.pth")) == [weights.name]  # weights only

    # a second run, stopped by SIGTERM in stage 3's first iteration (the third of the run), then continued
    step, steps = Trainer.step, []

    def stopped_step(trainer, batch, it):
        steps.append(it)
        if len(steps) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(trainer, batch, it)

    monkeypatch.setattr(Trainer, "step", stopped_step)
    with pytest.raises(train.Interrupted) as stopped:
        demo.main(args)
    monkeypatch.setattr(Trainer, "step", step)
    second = next(p for p in (tmp_path / "out").iterdir() if p != first)
    assert stopped.value.exit_code == 128 + signal.SIGTERM
    assert str(stopped.value).startswith("stage 3: stopped by SIGTERM at iteration 1; checkpoint ")
    assert str(stopped.value).endswith(f"python demo.py --resume --output {tmp_path / 'out'} continues {second.name}")
    resumed = demo.main(["--resume", *args[1:]])
    assert resumed["model"].startswith(str(second))
    assert_same_weights(read_checkpoint(resumed["model"]), read_checkpoint(weights))  # the same training
    assert weights.exists()  # the first run's weights are still there
