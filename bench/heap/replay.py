"""Replay a recorded allocation sequence (record.py) through this process's glibc, as one call repeated, and
print the minor faults of each repeat (issue 12's heap probe). Each buffer is aligned as torch aligns it
(``posix_memalign``, 64 bytes) and written in full, as the op that owns it would.
"""

import ctypes
import resource
import sys

libc = ctypes.CDLL("libc.so.6")
libc.posix_memalign.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]


def read_events(path: str) -> list[tuple[str, str, int]]:
    """record.py's log as (``"a"`` or ``"f"``, pointer, bytes; 0 for a free)."""
    events = []
    for line in open(path):
        f = line.split()
        events.append((f[0], f[1], int(f[2]) if f[0] == "a" else 0))
    return events


def main(path: str, repeats: int = 8) -> None:
    events = read_events(path)
    kept: dict[str, int] = {}                          # what a call leaves alive (its output) until the next
    for i in range(repeats):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        live: dict[str, int] = {}
        for kind, ptr, nbytes in events:
            if kind == "a":
                p = ctypes.c_void_p()
                libc.posix_memalign(ctypes.byref(p), 64, nbytes)
                libc.memset(p, 1, nbytes)
                live[ptr] = p.value
            elif ptr in live:
                libc.free(live.pop(ptr))
        for p in kept.values():
            libc.free(p)
        kept = live
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        print(f"repeat {i}: {faults * resource.getpagesize() / 2**20:.1f} MiB faulted")


if __name__ == "__main__":
    main(sys.argv[1])
