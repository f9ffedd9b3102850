"""The EC2 instances list held in memory (app/instances/inventory.py): RoleDesk's own attach,
replace and detach show at once without reloading the list; a change made outside RoleDesk
shows after "Refresh list"; paging, filters and search make no AWS call; the copy expires
after its time; and under concurrent views, refreshes and changes (real threads, SQLite and
PostgreSQL) one load serves everyone and the copy ends equal to AWS."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from bs4 import BeautifulSoup

from app import migrate
from app.audit.audited import AuditContext, Change
from app.instances.inventory import InstanceInventory
from app.instances.listing import instance_arn
from tests.conftest import FakeTime, csrf_token_for

REGION = "us-east-1"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request):
    """Every test here on both databases (the audited path writes the ledger)."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    migrate.upgrade(url)
    return url


class CallCounter:
    """EC2 calls made through RoleDesk's clients, by operation."""

    def __init__(self, services) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        services.clients.hook_every_client("before-call.ec2", self._count)

    def _count(self, model=None, **_) -> None:
        with self._lock:
            self.calls[model.name] += 1

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()


def soup(response):
    assert response.status_code == 200, response.text[:300]
    return BeautifulSoup(response.text, "html.parser")


def role_of(page, instance_id: str) -> str:
    return " ".join(page.select_one(f"#instance-{instance_id} .role-cell").text.split())


def loaded(page) -> str:
    return page.select_one(".list-age time")["datetime"]


def change_roles(client, data: dict[str, str]) -> None:
    response = client.post(
        "/instances/apply",
        data={"csrf_token": csrf_token_for(client), **data},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:500]
    client.app.state.instances.runner.wait(response.headers["location"].rsplit("/", 1)[-1])


def test_own_attach_replace_detach_show_at_once_without_reloading(client, seeded, ids):
    counter = CallCounter(seeded)
    first = soup(client.get("/instances"))
    bastion = ids["bastion"]
    assert role_of(first, bastion) == "No role"
    steps = [
        ({"action": "attach", "choice": "profile:reporting-ec2"}, "reporting-ec2"),  # attach
        ({"action": "attach", "choice": "profile:batch-worker-ec2"}, "batch-worker-ec2"),  # replace
        ({"action": "detach", "confirm": "Detach"}, "No role"),  # detach
    ]
    for data, expected in steps:
        change_roles(client, {**data, "region": REGION, "instance_id": bastion})
        counter.reset()
        page = soup(client.get("/instances"))
        assert role_of(page, bastion).startswith(expected)
        assert loaded(page) == loaded(first)  # the held list, not a reload
        # The changed instance was read back (and stored for every process) before the run
        # ended: the view itself asks AWS nothing.
        assert counter.calls == Counter()
        assert role_of(page, ids["web-1"]).startswith("web-app-ec2")


def test_change_outside_roledesk_shows_after_refresh(client, seeded, ids, ec2_client):
    before = soup(client.get("/instances?name=bastion"))
    assert role_of(before, ids["bastion"]) == "No role"
    ec2_client.associate_iam_instance_profile(
        InstanceId=ids["bastion"], IamInstanceProfile={"Name": "reporting-ec2"}
    )
    # Held in memory: not yet seen (the page says how old the list is).
    held = soup(client.get("/instances?name=bastion"))
    assert role_of(held, ids["bastion"]) == "No role"
    assert held.find("button", string="Refresh list")["formaction"] == "/instances/refresh"
    response = client.post(
        "/instances/refresh",
        data={"csrf_token": csrf_token_for(client), "region": REGION, "name": "bastion"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/instances?region=us-east-1&name=bastion"
    after = soup(client.get(response.headers["location"]))
    assert role_of(after, ids["bastion"]).startswith("reporting-ec2")
    assert loaded(after) > loaded(held)


def test_paging_filters_and_search_answer_from_memory(client, seeded):
    client.get("/instances")
    counter = CallCounter(seeded)
    for url in (
        "/instances?name=web",
        "/instances?name=i-",
        "/instances?role=web-app-ec2",
        "/instances?role=(none)",
        "/instances?state=stopped",
        "/instances?page=2",
    ):
        soup(client.get(url))
        soup(client.get(url, headers={"HX-Request": "true"}))
    assert counter.calls == Counter()


def test_a_viewer_sees_the_age_but_cannot_refresh(client_as):
    viewer = client_as("viewer")
    page = soup(viewer.get("/instances"))
    assert page.select_one(".list-age time") is not None
    assert page.find("button", string="Refresh list") is None
    refused = viewer.post("/instances/refresh", data={"csrf_token": csrf_token_for(viewer)})
    assert refused.status_code == 403


def test_the_copy_reloads_after_its_time(seeded):
    fake = FakeTime()
    inventory = InstanceInventory(seeded.ec2, ttl_seconds=60, clock=fake.clock)
    first = inventory.snapshot(REGION)
    fake.now += 59
    assert inventory.snapshot(REGION) is first
    fake.now += 2
    assert inventory.snapshot(REGION).loaded_at > first.loaded_at


def flip_role(services, iid: str, n: int, profiles: dict[str, str]) -> None:
    """Attach, replace or detach (by `n`) the role of one instance, audited."""
    ec2, ctx = services.ec2(REGION), AuditContext(actor="tester")
    change = Change(instance_arn(REGION, services.identity.account, iid))
    live = [a for a in ec2.list_associations([iid]) if a.state == "associated"]
    if live and n % 3 == 2:
        services.audited.call(ctx, change, ec2.disassociate_profile, live[0].association_id)
    elif live:
        arn = profiles[["reporting-ec2", "batch-worker-ec2"][n % 2]]
        services.audited.call(ctx, change, ec2.replace_profile, live[0].association_id, arn)
    else:
        services.audited.call(ctx, change, ec2.associate_profile, iid, profiles["web-app-ec2"])


def guarded(fn, errors: list[BaseException], done: threading.Event | None = None):
    """`fn` for a thread: its exception is kept for the test; `done` is set when it ends."""

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)
        finally:
            if done is not None:
                done.set()

    return run


def test_concurrent_views_refreshes_and_changes_end_equal_to_aws(seeded, ids):
    inventory, counter = seeded.instances, CallCounter(seeded)
    ec2 = seeded.ec2(REGION)
    # Eight first views at once: one load serves them all.
    start = threading.Barrier(8)

    def first_view() -> int:
        start.wait()
        return len(inventory.snapshot(REGION).instances)

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda _: first_view(), range(8))) == {len(ids)}
    assert counter.calls["DescribeInstances"] == 1

    profiles = {p.name: p.arn for p in seeded.iam.list_instance_profiles()}
    targets = [ids["bastion"], ids["reporting"], ids["web-2"]]
    # One writer (moto's backend is not safe for concurrent writes) changes roles through
    # the audited path while four threads view and one refreshes, until the writer is done.
    done = threading.Event()
    errors: list[BaseException] = []

    def changes() -> None:
        for n in range(12):
            for iid in targets:
                flip_role(seeded, iid, n, profiles)

    def repeat(fn):
        def loop() -> None:
            while not done.is_set():
                fn(REGION)

        return loop

    threads = [threading.Thread(target=guarded(changes, errors, done))]
    threads += [
        threading.Thread(target=guarded(repeat(inventory.snapshot), errors)) for _ in range(4)
    ]
    threads += [threading.Thread(target=guarded(repeat(inventory.refresh), errors))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not errors, errors
    truth = {
        a.instance_id: a.profile_arn for a in ec2.list_associations() if a.state == "associated"
    }
    held = {
        iid: a.profile_arn
        for iid, a in inventory.snapshot(REGION).associations.items()
        if a.state == "associated"
    }
    assert held == truth


def test_a_failed_read_back_is_shown_and_retried_at_the_next_view(client, seeded, ids):
    """AWS refusing the read-back (throttling, say: moto cannot be made to) fails that view
    with AWS's words, and the change is read back at the next one, not forgotten."""
    from botocore.stub import Stubber

    soup(client.get("/instances"))
    seeded.instances.changed(REGION, [ids["bastion"]])
    with Stubber(seeded.clients.client("ec2", REGION)) as stub:
        stub.add_client_error(
            "describe_iam_instance_profile_associations",
            service_error_code="RequestLimitExceeded",
            service_message="Request limit exceeded.",
            http_status_code=503,
        )
        failed = client.get("/instances")
    assert failed.status_code == 503  # AWS's throttling answer, in plain words with its code
    assert "RequestLimitExceeded" in failed.text
    counter = CallCounter(seeded)
    assert role_of(soup(client.get("/instances")), ids["bastion"]) == "No role"
    assert counter.calls == Counter({"DescribeIamInstanceProfileAssociations": 1})
