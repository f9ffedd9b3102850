"""The wizard's create runs on the operations engine in the background: while its calls run,
the done page lists them as they complete (htmx polling, a refresh without JavaScript), and
shows the result when the run ends."""

from __future__ import annotations

import threading

from app.wizard import routes
from tests.web.test_wizard_create import create, details, ec2_draft, soup

# What htmx sends when the progress area polls (hx-get on #create-progress).
POLL = {"HX-Request": "true", "HX-Target": "create-progress"}


def test_done_page_lists_the_calls_while_the_create_runs(client, seeded, monkeypatch):
    monkeypatch.setattr(routes, "CREATE_WAIT_SECONDS", 0.0)
    reached, release = threading.Event(), threading.Event()
    events = seeded.clients.client("iam").meta.events

    def hold(**_kwargs):
        reached.set()
        release.wait(20)  # AWS is slow to answer the first AttachRolePolicy

    events.register_first("before-call.iam.AttachRolePolicy", hold)
    try:
        draft = ec2_draft(client)
        started = create(client, draft, details("slow-create"))
        assert started.status_code == 303
        assert reached.wait(20)
        page = soup(client.get(f"/create-role/{draft}/done"))
        status = page.select_one("#create-progress")
        assert status["hx-trigger"] == "every 1s"
        assert page.select_one('noscript meta[http-equiv="refresh"]')
        rows = {
            r.select_one("td").text: r.select_one(".step-status").text
            for r in page.select("table.operation-steps tbody tr")
        }
        assert rows["Create the role"] == "Done"
        assert rows["Attach AmazonSSMManagedInstanceCore"] in ("In progress", "Waiting")
        assert rows["Add the role to the instance profile"] == "Waiting"
        fragment = client.get(f"/create-role/{draft}/done", headers=POLL)
        assert "<html" not in fragment.text and 'id="create-progress"' in fragment.text
    finally:
        release.set()
        events.unregister("before-call.iam.AttachRolePolicy", hold)
    assert seeded.runs.wait(_operation_of(seeded, draft))
    done = client.get(f"/create-role/{draft}/done", headers=POLL)
    assert done.headers.get("HX-Refresh") == "true"  # htmx then loads the whole result
    page = soup(client.get(f"/create-role/{draft}/done"))
    assert "Role slow-create created" in page.select_one("h1").text


def _operation_of(services, draft_id):
    from app.wizard.drafts import DraftStore

    return DraftStore(services.db).get(draft_id).operation_id
