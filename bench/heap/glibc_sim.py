"""A simulation of glibc's main-arena malloc over a recorded call (record.py), repeated: MiB faulted per repeat
(issue 12's heap probe; see README.md for how far it is from glibc itself).

Modelled: best fit among free chunks; ``posix_memalign(64)`` asks for 64 + 32 bytes more than the chunk it keeps;
coalescing with free neighbours and the top; brk growth with a 128 KiB pad; mmap at or above the threshold, which
rises to the size of a freed mapped chunk up to 32 MiB (and the trim threshold to twice that); the top trimmed
back to the pad when a free leaves it over the trim threshold. Pages below the highest written address stay
resident until a trim returns them. Not modelled: small allocations (under 4 KiB are not recorded), tcache and
fast bins, the unsorted bin's order, other threads' arenas.
"""

import bisect
import sys

PAGE, MIB = 4096, 2**20
MMAP_MAX, TOP_PAD, MINSIZE, ALIGN = 32 * MIB, 128 * 1024, 32, 64


def _up(n: int, a: int) -> int:
    return -(-n // a) * a


class Heap:
    def __init__(self):
        self.mmap_threshold = self.trim_threshold = 128 * 1024
        self.chunks: dict[int, list] = {}      # start -> [size, free], below the top
        self.starts: list[int] = []
        self.top = self.brk = self.written = 0
        self.faults = 0                          # bytes faulted in so far
        self.mapped: dict[int, int] = {}
        self._next_map = 0

    def _write(self, start: int, size: int) -> None:
        end = start + size
        if end > self.written:
            self.faults += _up(end, PAGE) - _up(max(self.written, start), PAGE)
            self.written = end

    def malloc(self, n: int):
        nb = _up(n + 8, 16)
        want = nb + ALIGN + MINSIZE
        fits = [s for s in self.starts if self.chunks[s][1] and self.chunks[s][0] >= want]
        if fits:
            best = min(fits, key=lambda s: self.chunks[s][0])
            size = self.chunks[best][0]
            self.chunks[best] = [nb, False]
            if size - nb >= MINSIZE:
                self.chunks[best + nb] = [size - nb, True]
                bisect.insort(self.starts, best + nb)
            self._write(best, nb)
            return ("heap", best)
        if self.brk - self.top < want + MINSIZE:
            if want >= self.mmap_threshold:
                size = _up(want + 8, PAGE)
                self.faults += size
                self._next_map += 1
                self.mapped[self._next_map] = size
                return ("mmap", self._next_map)
            self.brk += _up(want + MINSIZE - (self.brk - self.top) + TOP_PAD, PAGE)
        start = self.top
        self.chunks[start] = [nb, False]
        bisect.insort(self.starts, start)
        self.top = start + nb
        self._write(start, nb)
        return ("heap", start)

    def free(self, handle) -> None:
        kind, key = handle
        if kind == "mmap":
            size = self.mapped.pop(key)
            if self.mmap_threshold < size <= MMAP_MAX:
                self.mmap_threshold, self.trim_threshold = size, 2 * size
            return
        start = key
        self.chunks[start][1] = True
        i = bisect.bisect_left(self.starts, start)
        if i + 1 < len(self.starts) and self.chunks[self.starts[i + 1]][1]:
            self.chunks[start][0] += self.chunks.pop(self.starts.pop(i + 1))[0]
        if i > 0:
            prev = self.starts[i - 1]
            if self.chunks[prev][1] and prev + self.chunks[prev][0] == start:
                self.chunks[prev][0] += self.chunks.pop(start)[0]
                self.starts.pop(i)
                start, i = prev, i - 1
        size = self.chunks[start][0]
        if start + size == self.top:
            self.chunks.pop(start)
            self.starts.pop(i)
            self.top = start
        if size >= 64 * 1024 and self.brk - self.top >= self.trim_threshold:
            extra = (self.brk - self.top - TOP_PAD - MINSIZE) // PAGE * PAGE
            if extra > 0:
                self.brk -= extra
                self.written = min(self.written, self.brk)


def main(path: str, repeats: int = 8) -> None:
    from replay import read_events  # this folder's replay.py (run as a script)

    events = read_events(path)
    heap, kept = Heap(), {}
    for i in range(repeats):
        before, live = heap.faults, {}
        for kind, ptr, nbytes in events:
            if kind == "a":
                live[ptr] = heap.malloc(nbytes)
            elif ptr in live:
                heap.free(live.pop(ptr))
        for handle in kept.values():
            heap.free(handle)
        kept = live
        print(f"repeat {i}: {(heap.faults - before) / MIB:.1f} MiB faulted (simulated)")


if __name__ == "__main__":
    main(sys.argv[1])
