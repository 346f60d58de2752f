"""GSFM network, checkpoints, losses and the training step."""
