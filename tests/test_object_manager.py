"""The engine's object bookkeeping: ids, output channels and memory slots in one place, and
the memory's groups of objects that joined at the same frame."""

import pytest
import torch

from inference_memory_bank import MemoryBank
from object_manager import ObjectManager


def test_ids_channels_and_slots():
    objects = ObjectManager([2, 5])
    assert objects.add([5, 7, 7, 3]) == [7, 3]  # known and repeated ids are not added again
    assert objects.ids == [2, 5, 7, 3] and len(objects) == 4
    assert objects.channels([3, 2]) == [4, 1]
    assert objects.slots([4, 1]) == [3, 0] and objects.channels_of_slots([3, 0]) == [4, 1]
    assert objects.id_lookup("cpu")[torch.tensor([0, 1, 4])].tolist() == [0, 2, 3]
    for bad in (0, 256, -1):
        with pytest.raises(ValueError, match="object ids must be 1..255"):
            objects.add([bad])


def test_memory_keeps_the_groups_of_objects_that_joined_together():
    torch.manual_seed(0)
    keys = [torch.randn(1, 2, 2, 3) for _ in range(2)]  # two memory frames of 6 positions
    first, second = torch.randn(1, 4, 2, 3), torch.randn(3, 4, 2, 3)
    query = torch.randn(1, 2, 2, 3)
    memory = MemoryBank(3, top_k=4)
    memory.add_memory(keys[0], first, [2])
    memory.add_memory(keys[0], torch.randn(1, 4, 2, 3), [2], is_temp=True)  # a temporary frame: joins no one
    memory.add_memory(keys[1], second, [2, 0, 1])
    assert memory.groups == [(0, [2]), (6, [0, 1])] and memory.objects == [2, 0, 1]
    readout = memory.read(query)

    # slots 0 and 1 read only the frame they joined at; slot 2 reads both frames
    late = MemoryBank(2, top_k=4)
    late.add_memory(keys[1], second[1:], [0, 1])
    early = MemoryBank(1, top_k=4)
    early.add_memory(keys[0], first, [0])
    early.add_memory(keys[1], second[:1], [0])
    assert torch.allclose(readout[1:], late.read(query), atol=1e-6)
    assert torch.allclose(readout[:1], early.read(query), atol=1e-6)


def test_masks_take_the_first_maximum_as_argmax_does():
    """The engine's masks: each pixel's most probable channel as its object id, a tie going
    to the lowest channel (the background first), as ``torch.argmax`` decides."""
    from inference_core import InferenceCore
    from tests.golden import golden_network

    core = InferenceCore(golden_network(), object_ids=[4, 9])
    torch.manual_seed(0)
    prob = torch.rand(3, 6, 7).round(decimals=1)  # many exact ties
    prob[:, 0, 0] = torch.tensor([0.2, 0.4, 0.4])
    prob[:, 0, 1] = torch.tensor([0.5, 0.2, 0.5])
    expected = torch.tensor([0, 4, 9])[torch.argmax(prob, dim=0)].numpy()
    mask = core.prob_to_mask(prob)
    assert (mask == expected).all() and mask[0, 0] == 4 and mask[0, 1] == 0
