"""ui/turns.py: at most SLOTS pages run at once, the others wait in turn; waiting scripts give their turn up;
no page waits past WAIT_S; a turn is given back whatever ends the page (an error, st.rerun's exception)."""

from __future__ import annotations

import threading
import time

import pytest

from ui import turns


def _run_pages(count: int, page_s: float) -> tuple[int, list[int]]:
    """``count`` threads run a page of ``page_s`` seconds in turn; the most inside at once, the finishing order."""
    inside, most, finished = 0, 0, []
    lock = threading.Lock()

    def page(number: int) -> None:
        nonlocal inside, most
        with turns.turn():
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(page_s)
            with lock:
                inside -= 1
                finished.append(number)

    threads = [threading.Thread(target=page, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # they ask in this order
    for thread in threads:
        thread.join()
    return most, finished


def test_at_most_slots_pages_run_at_once_and_the_first_to_ask_finish_first() -> None:
    most, finished = _run_pages(6, 0.1)
    assert most == turns.SLOTS
    assert finished[: turns.SLOTS] == list(range(turns.SLOTS))  # the first to ask are the first served
    assert sorted(finished) == list(range(6))


def test_a_page_that_waited_wait_s_runs_anyway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(turns, "WAIT_S", 0.05)
    most, finished = _run_pages(4, 0.3)
    assert most > turns.SLOTS  # the later ones stopped waiting
    assert sorted(finished) == list(range(4))
    # and the slots are all free again: as many turns as SLOTS can be taken without waiting
    for _ in range(turns.SLOTS):
        assert turns._slots.acquire(timeout=0)
    for _ in range(turns.SLOTS):
        turns._slots.release()


def test_a_script_waiting_for_something_else_gives_its_turn_up() -> None:
    release = threading.Event()
    waiting = threading.Barrier(turns.SLOTS + 1)

    def builder() -> None:
        with turns.turn():
            with turns.waiting():
                waiting.wait()
                release.wait(5)

    threads = [threading.Thread(target=builder) for _ in range(turns.SLOTS)]
    for thread in threads:
        thread.start()
    waiting.wait()  # every slot's holder is waiting for something else
    started = time.perf_counter()
    with turns.turn():
        assert time.perf_counter() - started < 1  # not turns.WAIT_S
    release.set()
    for thread in threads:
        thread.join()


def test_a_turn_is_given_back_when_the_page_raises_and_a_nested_turn_does_not_wait() -> None:
    class Rerun(BaseException):  # what st.rerun() raises is not an Exception
        pass

    for error in (ValueError, Rerun):
        with pytest.raises(error):
            with turns.turn():
                with turns.turn():  # the same thread: no second slot, no wait
                    raise error()
    for _ in range(turns.SLOTS):
        assert turns._slots.acquire(timeout=0)
    for _ in range(turns.SLOTS):
        turns._slots.release()
