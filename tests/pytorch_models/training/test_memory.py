"""`training.memory.freed_memory_kept`: inside it a step's large freed tensors are reused, not
faulted in afresh; after it, the memory goes back to the system. Measured in a fresh
interpreter (the allocator's state is the process's): minor page faults per round, a round
being three tensors of 40-60 MB written and freed as a training step's are, and the resident
set."""

import json
import subprocess
import sys

import pytest

from pytorch_models.training import memory

SCRIPT = r"""
import json, random, resource, torch
from pytorch_models.training import memory
MB = 2**20
sizes = random.Random(0)
def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096
def faults_of_a_round():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    step = [torch.ones(sizes.randint(40, 60) * MB // 4) for _ in range(3)]  # every page written
    del step
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
outside = [faults_of_a_round() for _ in range(4)]
rss_before = resident()
with memory.freed_memory_kept():
    inside = [faults_of_a_round() for _ in range(12)]
    rss_inside = resident()
rss_after = resident()
print(json.dumps({"outside": outside, "inside": inside, "rss_before": rss_before,
                  "rss_inside": rss_inside, "rss_after": rss_after}))
"""


@pytest.mark.skipif(memory._LIBC is None, reason="glibc's malloc only")
def test_freed_memory_is_reused_inside_the_block_and_given_back_after_it():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True,
                         timeout=120)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # Outside: every round maps its 150 MB afresh and faults in each page (38,400 pages).
    assert min(got["outside"]) > 30_000
    # Inside: once the heap holds a round's memory, the rounds fault in a fraction of it.
    assert sum(got["inside"][4:]) < 0.25 * sum(got["outside"]) * 2
    assert got["rss_inside"] - got["rss_before"] > 100 * 2**20
    # After: given back.
    assert got["rss_after"] - got["rss_before"] < 50 * 2**20
