import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(autouse=True, scope="session")
def _deterministic_cpu():
    torch.set_num_threads(2)
    torch.manual_seed(0)
