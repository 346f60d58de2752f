import os

import pytest
import torch

from tests.helpers import fault_config


@pytest.fixture(autouse=True, scope="session")
def _deterministic_cpu():
    torch.set_num_threads(2)
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _fast_checkpoints():
    """torch.save without the CRC32 of every record in this process: a third of the time of
    the tests' many checkpoint writes (training subprocesses do the same through
    tests/train_for_tests.py; users keep torch's default)."""
    from torch.utils.serialization import config

    previous, config.save.compute_crc32 = config.save.compute_crc32, False
    yield
    config.save.compute_crc32 = previous


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """Small synthetic datasets in every real layout, shared by the tests."""
    from datasets.synthetic import SyntheticConfig, generate

    return generate(
        SyntheticConfig(
            tmp_path_factory.mktemp("synthetic") / "data",
            seed=3,
            height=64,
            width=96,
            frames=7,
            train_videos=3,
            val_videos=2,
            max_objects=2,
            static_images=5,
        )
    )


@pytest.fixture(scope="session")
def golden_weights_file(tmp_path_factory):
    from tests.golden import golden_state_dict

    path = tmp_path_factory.mktemp("weights") / "golden.pth"
    torch.save(golden_state_dict("eval"), path)
    return path


@pytest.fixture(scope="session")
def cuda():
    """The GPU for tests marked ``cuda`` (float32 golden comparisons need TF32 off); without
    one they are skipped, unless GSFM_CUDA_LANE_ON_CPU=1 dry-runs their logic on the CPU."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return torch.device("cuda")
    if os.environ.get("GSFM_CUDA_LANE_ON_CPU") == "1":
        return torch.device("cpu")
    pytest.skip("no CUDA GPU (make gpu-check runs these on a GPU machine)")


@pytest.fixture(scope="session")
def uninterrupted(synthetic_root, tmp_path_factory):
    """The save folder of a single-process training run that nothing interrupted (the
    helpers' fault_args: checkpoints at 2 and 4). It runs in the test process (no start-up
    to wait for) and gives the same weights as the same run in a subprocess."""
    import train

    save_root = tmp_path_factory.mktemp("uninterrupted")
    train.train(fault_config(synthetic_root, save_root))
    return save_root
