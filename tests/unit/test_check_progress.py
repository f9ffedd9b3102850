"""The wait behind "Check progress" (app/web/check_progress.py): it answers at the first
change or the end of the work, and never later than its bound, looking at a fixed pace."""

from __future__ import annotations

from app.web.check_progress import WAIT_SECONDS, wait_for_news


class Work:
    """A run whose state moves at given times of a simulated clock."""

    def __init__(self, states: dict[float, str]) -> None:
        self.now = 0.0
        self.states = states
        self.looks: list[float] = []

    def look(self) -> str:
        self.looks.append(self.now)
        return self.states[max(t for t in self.states if t <= self.now)]

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds

    def wait(self, **kwargs) -> str:
        return wait_for_news(
            self.look,
            state=lambda s: s.rstrip("!"),
            finished=lambda s: s == "finished",
            sleep=self.sleep,
            clock=lambda: self.now,
            **kwargs,
        )


def test_answers_at_the_first_change():
    work = Work({0.0: "1 of 3", 1.1: "2 of 3", 2.0: "finished"})
    assert work.wait() == "2 of 3"
    assert work.now == 1.25  # the first look after the change, at the pace of 0.25 s


def test_answers_at_once_when_the_work_has_finished():
    work = Work({0.0: "finished"})
    assert work.wait() == "finished"
    assert work.looks == [0.0]


def test_the_end_is_news_even_when_the_state_reads_the_same():
    work = Work({0.0: "running", 0.6: "finished"})
    assert work.wait() == "finished"


def test_a_change_the_state_ignores_is_not_news():
    work = Work({0.0: "running", 0.5: "running!"})  # e.g. a count that moves
    assert work.wait(at_most=2.0) == "running!"
    assert work.now == 2.0


def test_nothing_new_answers_after_the_bound_with_bounded_looks():
    work = Work({0.0: "1 of 3"})
    assert work.wait() == "1 of 3"
    assert work.now == WAIT_SECONDS
    assert len(work.looks) == 1 + WAIT_SECONDS / 0.25


def test_a_costly_look_keeps_its_own_pace():
    work = Work({0.0: "waiting"})
    work.wait(every=2.0, at_most=5.0)
    assert work.looks == [0.0, 2.0, 4.0, 5.0]
