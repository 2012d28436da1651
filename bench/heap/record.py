"""Record the allocations of one torch call of a held-out model, as glibc sees them (issue 12's heap probe).

Run with the recorder preloaded; it prints the call's minor faults and writes one line per allocation of 4 KiB
or more (``a <ptr> <bytes> <tid>``) and per free (``f <ptr> <tid>``):

    gcc -O2 -shared -fPIC -o /tmp/allocs.so bench/heap/allocs.c -ldl
    LD_PRELOAD=/tmp/allocs.so .venv/bin/python bench/heap/record.py mobilenet_v2@96 32 /tmp/mv2.log
    .venv/bin/python bench/heap/replay.py /tmp/mv2.log      # the same sequence through glibc, no torch
"""

import ctypes
import resource
import sys

import torch

from labkit.calibration import heldout


def main(case: str, batch: int, path: str) -> None:
    torch.set_num_threads(2)
    model, x = heldout.build(case), heldout.example(case, batch)
    recorder = ctypes.CDLL(None)                      # the preloaded allocs.so
    on = ctypes.c_int.in_dll(recorder, "shim_on")
    with torch.inference_mode():
        for _ in range(4):                            # warm: glibc's mmap threshold settles
            model(x)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        on.value = 1
        model(x)
        on.value = 0
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    recorder.shim_dump(path.encode())
    print(f"{case} b{batch}: {faults * resource.getpagesize() / 2**20:.1f} MiB faulted in one call")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
