import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _deterministic_cpu():
    torch.set_num_threads(2)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """Small synthetic datasets in every real layout, shared by the tests."""
    from datasets.synthetic import SyntheticConfig, generate
    return generate(SyntheticConfig(tmp_path_factory.mktemp("synthetic") / "data", seed=3, height=64, width=96,
                                    frames=7, train_videos=3, val_videos=2, max_objects=2, static_images=5))


@pytest.fixture(scope="session")
def golden_weights_file(tmp_path_factory):
    from tests.golden import golden_state_dict
    path = tmp_path_factory.mktemp("weights") / "golden.pth"
    torch.save(golden_state_dict("eval"), path)
    return path
