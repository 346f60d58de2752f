"""train.py as the tests' subprocesses run it (``python -m tests.train_for_tests ...``, also
under torchrun): the same command, with checkpoints written without the CRC32 of every
record, which takes two thirds of their write time (users keep torch's default)."""

import sys

from torch.utils.serialization import config

import train
from util import cli

if __name__ == "__main__":
    config.save.compute_crc32 = False
    cli.run(lambda: train.main(sys.argv[1:]))
