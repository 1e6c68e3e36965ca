"""Script runs take turns: at most ``SLOTS`` sessions' pages run at once, the others wait for a turn in order.

Streamlit runs each session's script in a thread of one process, and Python runs one thread's code at a time
(the GIL): ten sessions asking for a page at once would share the core slice by slice and all finish near the
end, each page taking as long as the ten together. Taking turns, the first pages are done while the later ones
wait: the same total, but most users see their page sooner (ten Patient pages of about 0.2 s of the core each:
the median page at about 1 s instead of 2). ``SLOTS`` is 2, so that pandas' and NumPy's work outside the GIL and a
long page (a first computation) do not hold up the others; a page that has waited ``WAIT_S`` seconds runs anyway,
so nothing waits without end. A script that waits for something outside itself (a build in a child process, a
result computed in the background) gives its turn up meanwhile (``waiting``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

SLOTS = 2
WAIT_S = 5.0

_slots = threading.BoundedSemaphore(SLOTS)
_mine = threading.local()  # whether this thread holds a turn


def _take() -> None:
    _mine.held = _slots.acquire(timeout=WAIT_S)


def _give() -> None:
    if getattr(_mine, "held", False):
        _mine.held = False
        _slots.release()


@contextmanager
def turn() -> Iterator[None]:
    """Run the block in this script's turn (after at most ``WAIT_S`` seconds of waiting for one)."""
    if getattr(_mine, "held", False):  # already this thread's turn
        yield
        return
    _take()
    try:
        yield
    finally:
        _give()


@contextmanager
def waiting() -> Iterator[None]:
    """Give this script's turn up while the block waits for something outside it; take a turn again after."""
    held = getattr(_mine, "held", False)
    _give()
    try:
        yield
    finally:
        if held:
            _take()
