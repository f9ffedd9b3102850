from datetime import UTC, datetime, timedelta, timezone

from app.audit.chain import GENESIS_HASH, canonical_json, entry_hash


def entry(**changes):
    base = {
        "seq": 1,
        "event_id": "e",
        "kind": "intent",
        "action": "iam:CreateRole",
        "actor": "alice",
        "outcome": "pending",
        "recorded_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        "params": {"b": 1, "a": [1, 2]},
    }
    return {**base, **changes}


def test_canonical_json_is_sorted_compact_and_utc():
    text = canonical_json(entry()).decode()
    assert text.startswith('{"account_id":null,"action":"iam:CreateRole"')
    assert '"params":{"a":[1,2],"b":1}' in text
    assert '"recorded_at":"2026-01-02T03:04:05.000006Z"' in text


def test_same_instant_in_another_zone_or_naive_hashes_the_same():
    aware = entry()
    plus_two = entry(recorded_at=aware["recorded_at"].astimezone(timezone(timedelta(hours=2))))
    naive = entry(recorded_at=aware["recorded_at"].replace(tzinfo=None))
    assert entry_hash(GENESIS_HASH, aware) == entry_hash(GENESIS_HASH, plus_two)
    assert entry_hash(GENESIS_HASH, aware) == entry_hash(GENESIS_HASH, naive)


def test_hash_depends_on_previous_hash_and_every_field():
    h = entry_hash(GENESIS_HASH, entry())
    assert len(h) == 64
    assert entry_hash("1" * 64, entry()) != h
    assert entry_hash(GENESIS_HASH, entry(actor="mallory")) != h
    assert entry_hash(GENESIS_HASH, entry(params={"b": 2, "a": [1, 2]})) != h
