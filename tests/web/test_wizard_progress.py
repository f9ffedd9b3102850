"""The wizard's create runs on the operations engine in the background: Create answers with
the progress page at once when the run takes more than a moment; while its calls run the done
page lists them as they complete (htmx polling; without JavaScript a "Check progress" link
whose request waits for news), and shows the result when the run ends."""

from __future__ import annotations

import threading

from tests.web.test_wizard_create import create, details, ec2_draft, soup

# What htmx sends when the progress area polls (hx-get on #create-progress).
POLL = {"HX-Request": "true", "HX-Target": "create-progress"}
ATTACH = "Attach AmazonSSMManagedInstanceCore"
JOIN = "Add the role to the instance profile"  # after the attach: it waits for it


def rows_of(page):
    return {
        r.select_one("td").text: r.select_one(".step-status").text
        for r in page.select("table.operation-steps tbody tr")
    }


def test_done_page_lists_the_calls_while_the_create_runs(client, seeded):
    reached, release = threading.Event(), threading.Event()
    events = seeded.clients.client("iam").meta.events

    def hold(**_kwargs):
        reached.set()
        release.wait(20)  # AWS is slow to answer the first AttachRolePolicy

    events.register_first("before-call.iam.AttachRolePolicy", hold)
    try:
        draft = ec2_draft(client)
        # Create does not wait for the run: it answers with the progress page.
        started = create(client, draft, details("slow-create"), wait=False)
        assert started.status_code == 303
        assert started.headers["location"] == f"/create-role/{draft}/done"
        assert reached.wait(20)
        page = soup(client.get(f"/create-role/{draft}/done"))
        assert page.select_one("h1").text == "Creating the role…"
        status = page.select_one("#create-progress")
        assert status["hx-trigger"] == "every 1s"
        # Without JavaScript: no self-refresh (WCAG 2.2.1), a link that checks instead.
        assert page.select_one('meta[http-equiv="refresh"]') is None
        check = page.select_one("#create-progress noscript a")
        assert check.text == "Check progress"
        assert check["href"] == f"/create-role/{draft}/done?wait=1"
        assert "updates by itself" in page.select_one("#create-progress .js-only").text
        rows = rows_of(page)
        assert rows["Create the role"] == "Done"
        assert rows[ATTACH] in ("In progress", "Waiting")
        # The profile join does not wait for the attaches (it needs only the profile), so
        # it may be anywhere by now: tests/aws/test_create_side_by_side.py times it.
        fragment = client.get(f"/create-role/{draft}/done", headers=POLL)
        assert "<html" not in fragment.text and 'id="create-progress"' in fragment.text
    finally:
        release.set()
        events.unregister("before-call.iam.AttachRolePolicy", hold)
    assert seeded.runs.wait(_operation_of(seeded, draft))
    done = client.get(f"/create-role/{draft}/done", headers=POLL)
    assert done.headers.get("HX-Refresh") == "true"  # htmx then loads the whole result
    page = soup(client.get(f"/create-role/{draft}/done?wait=1"))  # finished: no wait
    assert "Role slow-create created" in page.select_one("h1").text
    assert page.select_one("noscript a") is None


def test_check_progress_waits_for_the_next_call_to_settle(client, seeded):
    """The no-JavaScript "Check progress" request holds until a call of the run settles,
    then shows it: one click, fresh progress."""
    held: list[bool] = []  # one item for each attach that reached AWS and is held
    release = threading.Event()
    events = seeded.clients.client("iam").meta.events

    def hold(**_kwargs):
        held.append(True)
        release.wait(20)

    events.register_first("before-call.iam.AttachRolePolicy", hold)
    try:
        draft = ec2_draft(client)  # two managed policies: two attaches, side by side
        create(client, draft, details("checked-create"), wait=False)
        for _ in range(200):
            rows = rows_of(soup(client.get(f"/create-role/{draft}/done", headers=POLL)))
            # Both attaches held at AWS; everything else, the profile join included (it needs
            # only the profile), settled: the held calls are all that can move next.
            attaches = {k: v for k, v in rows.items() if k.startswith("Attach ")}
            others = {k: v for k, v in rows.items() if k not in attaches}
            if len(held) == len(attaches) == 2 and set(others.values()) == {"Done"}:
                break
            release.wait(0.05)
        assert set(attaches.values()) == {"In progress"} and rows[JOIN] == "Done", rows
        timer = threading.Timer(0.5, release.set)  # AWS answers while the check waits
        timer.start()
        checked = soup(client.get(f"/create-role/{draft}/done?wait=1"))
        timer.join()
        assert checked.select_one("html") is not None  # the whole page, not a fragment
        # An attach settled, either one first (and the run may have ended since: then its
        # result).
        heading = checked.select_one("h1").text
        now = rows_of(checked)
        settled = [k for k, v in now.items() if k.startswith("Attach ") and v == "Done"]
        assert "Role checked-create created" in heading or settled, now
    finally:
        release.set()
        events.unregister("before-call.iam.AttachRolePolicy", hold)
    assert seeded.runs.wait(_operation_of(seeded, draft))


def _operation_of(services, draft_id):
    from app.wizard.drafts import DraftStore

    return DraftStore(services.db).get(draft_id).operation_id
