"""util.memory.keep_freed_memory (what every command does at its start): a large tensor's
memory comes from malloc's heap instead of a mapping of its own, and stays there once the
tensor is freed, for the next frame's tensors to reuse without faulting its pages in again."""

import ctypes
import subprocess
import sys

import pytest

from tests.helpers import REPO

ONE_TENSOR = """
import ctypes, sys, torch
from util.memory import keep_freed_memory
FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Mallinfo2
if sys.argv[1] == "keep":
    assert keep_freed_memory()
heap_before = libc.mallinfo2().arena
x = torch.ones(24 * 2**18)  # 24 MB, the size of a decoder activation at 480p
mapped_alone = libc.mallinfo2().hblkhd  # bytes in blocks mapped one by one
del x
print(mapped_alone, libc.mallinfo2().arena - heap_before)  # and the heap's growth once it is freed
"""
MB = 2**20


def malloc_state(mode: str) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", ONE_TENSOR, mode], cwd=REPO, capture_output=True, text=True, check=True, timeout=120
    )
    mapped, heap_growth = done.stdout.split()
    return int(mapped), int(heap_growth)


def has_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not has_mallinfo2(), reason="glibc 2.33 or newer")
def test_large_tensors_come_from_the_heap_and_stay_there():
    _, heap_growth = malloc_state("default")
    assert heap_growth < 24 * MB  # handed back to the kernel when freed
    mapped, heap_growth = malloc_state("keep")
    assert mapped < 24 * MB and heap_growth >= 24 * MB
