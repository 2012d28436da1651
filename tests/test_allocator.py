"""labkit.allocator: `import labkit` keeps freed memory in the process, so a torch call stops page-faulting its
activations in again on every call (labs 00, 01). Measured in fresh interpreters with the kernel's own count of
minor page faults, against glibc's defaults (LABKIT_MALLOC=system) on the same model."""

import json
import os
import subprocess
import sys

import pytest

CALL = """
import json, resource, sys
import labkit, torch
from labkit.allocator import steady
from labkit.calibration import heldout
torch.set_num_threads(1)
model, x = heldout.build("mobilenet_v2@96"), heldout.example("mobilenet_v2@96", batch=16)
with torch.inference_mode():
    for _ in range(4):
        model(x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        model(x)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"state": steady(), "faults_per_call": (after - before) / 3}))
"""


def _run(env_extra, call=CALL, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("LABKIT_MALLOC", "THP_MEM_ALLOC_ENABLE")} | env_extra
    out = subprocess.run([sys.executable, "-c", call, *args], capture_output=True, text=True, env=env, timeout=300,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_labkit_process_stops_faulting_its_activations_in_on_every_call():
    kept, system = _run({}), _run({"LABKIT_MALLOC": "system"})
    assert (kept["state"], system["state"]) == ("kept", "system")
    # glibc's defaults: MiB-sized activations are handed back and faulted in again, call after call
    assert system["faults_per_call"] > 2000, system
    # kept: at most a tenth of that (0 here; 384 against 8,032 once on a CI machine beside another test worker)
    assert kept["faults_per_call"] < 0.1 * system["faults_per_call"], (kept, system)


def test_steady_is_set_once_and_says_what_holds():
    from labkit.allocator import steady

    assert steady() == steady() in ("kept", "not glibc")     # this process imported labkit without an opt-out


BIG = """
import json, resource, sys
if sys.argv[-1] == "torch first":
    import torch
    early = torch.ones(2**21)                        # 8 MiB: torch reads THP_MEM_ALLOC_ENABLE here, unset
import labkit, torch
from labkit.allocator import huge_pages
torch.set_num_threads(1)
src = torch.ones(2**24)                              # 64 MiB: each torch.neg(src) maps a fresh 64 MiB output
with torch.inference_mode():
    for _ in range(2):
        torch.neg(src)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        torch.neg(src)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
print(json.dumps({"huge_pages": huge_pages(), "faults_per_call": (after - before) / 3}))
"""


def _thp_kernel() -> str:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read()
    except OSError:
        return "[never]"


@pytest.mark.skipif(not sys.platform.startswith("linux") or "[madvise]" not in _thp_kernel(),
                    reason="the kernel's transparent huge pages on request (madvise): 'always' gives every process "
                           "huge pages, 'never' none")
def test_torch_faults_big_buffers_in_per_huge_page_once_labkit_is_imported_first():
    on = _run({}, BIG)
    system = _run({"LABKIT_MALLOC": "system"}, BIG)
    late = _run({}, BIG, "torch first")
    assert (on["huge_pages"], system["huge_pages"], late["huge_pages"]) == ("on", "off", "late")
    # 4 KiB pages: 64 MiB faults in 16,384 times a call; 2 MiB pages: 32 (about 545 measured here)
    assert system["faults_per_call"] > 15000, system
    assert late["faults_per_call"] > 15000, late
    assert on["faults_per_call"] < 0.1 * system["faults_per_call"], (on, system)
