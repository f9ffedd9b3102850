"""Group commit: concurrent submissions share batches, every caller gets its own result only
after its batch is written, and a bad item fails only its own caller."""

import threading
import time

import pytest

from app.audit.group_commit import GroupCommit


class Writer:
    def __init__(self):
        self.batches = []
        self.lock = threading.Lock()

    def __call__(self, items):
        if "bad" in items:
            raise ValueError("bad item")
        time.sleep(0.01)  # a slow commit, so others queue up meanwhile
        with self.lock:
            self.batches.append(list(items))
        return [f"ok:{i}" for i in items]


def run_threads(group, items):
    results, errors = {}, {}

    def work(item):
        try:
            results[item] = group.submit(item)
        except ValueError as exc:
            errors[item] = str(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results, errors


def test_concurrent_submissions_share_batches_and_each_gets_its_result():
    writer = Writer()
    items = [f"e{i}" for i in range(60)]
    results, errors = run_threads(GroupCommit(writer), items)
    assert errors == {}
    assert results == {i: f"ok:{i}" for i in items}
    written = [i for batch in writer.batches for i in batch]
    assert sorted(written) == sorted(items)  # each exactly once
    assert len(writer.batches) < len(items)  # some were grouped


def test_a_bad_item_fails_only_its_caller():
    writer = Writer()
    items = [f"e{i}" for i in range(20)] + ["bad"]
    results, errors = run_threads(GroupCommit(writer), items)
    assert errors == {"bad": "bad item"}
    assert set(results) == set(items) - {"bad"}


def test_single_caller_is_written_at_once():
    writer = Writer()
    assert GroupCommit(writer).submit("x") == "ok:x"
    assert writer.batches == [["x"]]
    with pytest.raises(ValueError):
        GroupCommit(writer).submit("bad")
