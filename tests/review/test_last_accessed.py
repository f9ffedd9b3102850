"""Services last accessed (IAM Access Advisor) on the role page and the role's review page.

moto does not implement GenerateServiceLastAccessedDetails / GetServiceLastAccessedDetails:
the sandbox path runs against the real moto server (its NotImplemented answer, nothing shown
in its place); the real-AWS path is the same pages with the IAM client stubbed (botocore
Stubber) for those two calls only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import boto3
import pytest
from botocore.stub import Stubber
from bs4 import BeautifulSoup

from app.aws.calls import action_of
from app.aws.clients import AwsClients
from app.aws.iam import IamGateway
from app.review.last_accessed import LastAccessedReports
from app.services import Services
from tests.conftest import SANDBOX_REGION, csrf_token_for

# The reports' times, relative to when each test runs (the page says "5 minutes ago"):
# set afresh before every test, not at import, which can be many minutes earlier.
NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _now() -> None:
    global NOW
    NOW = datetime.now(UTC)


# Job ids as AWS gives them (36 characters).
JOBS = {
    k: f"{i:08d}-1111-2222-3333-444455556666"
    for i, k in enumerate(["job-1", "job-f", "job-a", "job-b"])
}
ROLE = "web-app-ec2"  # a seed role


def soup(response: Any) -> BeautifulSoup:
    return BeautifulSoup(response.text, "html.parser")


def section(response: Any) -> Any:
    found = soup(response).select_one("#last-accessed")
    assert found is not None, response.text[:2000]
    return found


def ask(client: Any, back: str = "role", htmx: bool = False) -> Any:
    return client.post(
        f"/access-review/roles/{ROLE}/last-accessed",
        data={"back": back, "csrf_token": csrf_token_for(client)},
        headers={"HX-Request": "true"} if htmx else {},
        follow_redirects=False,
    )


# The sandbox: moto's real answer ------------------------------------------------------------


def test_sandbox_says_access_advisor_is_not_available_and_shows_nothing(
    client: Any, seeded: Services
) -> None:
    before = section(client.get(f"/roles/{ROLE}"))
    assert "has not asked AWS" in before.text
    assert before.select_one("form button").text == "Ask AWS which services this role used"

    response = ask(client)
    assert response.status_code == 303
    assert response.headers["location"] == f"/roles/{ROLE}#last-accessed"
    after = section(client.get(f"/roles/{ROLE}"))
    assert "Not available here" in after.text
    # moto's own answer, as the sandbox gave it (app.aws.sandbox): code and message.
    assert "NotImplemented" in after.text
    assert "generate_service_last_accessed_details" in after.text
    assert after.select("table, ul.last-accessed-unused, progress, form") == []
    # It holds for every role: another role's review page says so without asking again.
    seeded.access_scan.run_now()
    other = section(client.get("/access-review/roles/old-data-migration"))
    assert "Not available here" in other.text and other.select("table") == []


def test_gateway_calls_are_declared_for_the_permissions_policy() -> None:
    assert action_of(IamGateway.start_service_last_accessed) == (
        "iam:GenerateServiceLastAccessedDetails"
    )
    assert action_of(IamGateway.service_last_accessed) == "iam:GetServiceLastAccessedDetails"


# Real AWS: the two calls stubbed ----------------------------------------------------------


class _OneClient:
    """Stands in for AwsClients: IamGateway asks it for its IAM client."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def client(self, service: str, region: str | None = None) -> Any:
        return self._client


@pytest.fixture
def iam_client(seeded: Services) -> Any:
    """An IAM client of its own for the reports, so that stubbing it leaves the role pages'
    other IAM reads going to the sandbox."""
    return boto3.client(
        "iam",
        endpoint_url=seeded.sandbox_endpoint,
        region_name=SANDBOX_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def stub(iam_client: Any) -> Iterator[Stubber]:
    with Stubber(iam_client) as stubber:
        yield stubber


@pytest.fixture
def clock(seeded: Services, iam_client: Any) -> list[float]:
    """The reports on the stubbed client, with a clock the test moves (a running job is
    asked about at most once a second)."""
    now = [1000.0]
    gateway = IamGateway(cast(AwsClients, _OneClient(iam_client)))
    seeded.last_accessed = LastAccessedReports(gateway, clock=lambda: now[0])
    return now


def arn(seeded: Services) -> str:
    return f"arn:aws:iam::{seeded.identity.account}:role/{ROLE}"


def started(stub: Stubber, seeded: Services, job: str = JOBS["job-1"]) -> None:
    stub.add_response(
        "generate_service_last_accessed_details",
        {"JobId": job},
        {"Arn": arn(seeded), "Granularity": "SERVICE_LEVEL"},
    )


def details(stub: Stubber, job: str, answer: dict[str, Any], marker: str | None = None) -> None:
    params: dict[str, Any] = {"JobId": job, "MaxItems": 1000}
    if marker:
        params["Marker"] = marker
    # botocore's model makes JobCompletionDate required (AWS leaves it out while the job runs).
    base = {
        "JobStatus": "IN_PROGRESS",
        "JobCreationDate": NOW,
        "JobCompletionDate": NOW,
        "ServicesLastAccessed": [],
    }
    stub.add_response("get_service_last_accessed_details", {**base, **answer}, params)


def service(namespace: str, name: str, used: datetime | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "ServiceNamespace": namespace,
        "ServiceName": name,
        "TotalAuthenticatedEntities": 1 if used else 0,
    }
    if used:
        found |= {
            "LastAuthenticated": used,
            "LastAuthenticatedRegion": "eu-west-1",
            "LastAuthenticatedEntity": "arn:aws:iam::123456789012:role/web-app-ec2",
        }
    return found


def test_real_aws_job_in_progress_then_completed_across_pages(
    client: Any, seeded: Services, stub: Stubber, clock: list[float]
) -> None:
    started(stub, seeded)
    fragment = ask(client, htmx=True)  # htmx: the section itself, polling while AWS works
    assert fragment.status_code == 200, fragment.text
    running = section(fragment)
    assert running["hx-get"] == f"/access-review/roles/{ROLE}/last-accessed?back=role"
    assert running.select_one("progress") is not None
    assert "AWS is building the report" in running.text
    # Without JavaScript: a link to the page that waits for the report (no timed reload).
    assert 'http-equiv="refresh"' not in fragment.text
    check = running.select_one("noscript a")
    assert check.text == "Check progress"
    assert check["href"] == f"/roles/{ROLE}?wait=1#last-accessed"

    clock[0] += 2
    details(stub, JOBS["job-1"], {})  # still IN_PROGRESS
    polled = client.get(
        f"/access-review/roles/{ROLE}/last-accessed?back=role", headers={"HX-Request": "true"}
    )
    assert section(polled).select_one("progress") is not None
    # Within a second of the last look, a reload does not ask AWS again (no stub queued).
    assert section(client.get(f"/roles/{ROLE}")).select_one("progress") is not None

    clock[0] += 2
    done = {
        "JobStatus": "COMPLETED",
        "JobCompletionDate": NOW - timedelta(minutes=5),
        "IsTruncated": True,
        "Marker": "page-2",
        "ServicesLastAccessed": [
            service("s3", "Amazon S3", NOW - timedelta(days=2)),
            service("ec2", "Amazon EC2"),
        ],
    }
    details(stub, JOBS["job-1"], done)
    details(
        stub,
        JOBS["job-1"],
        {
            "JobStatus": "COMPLETED",
            "JobCompletionDate": NOW - timedelta(minutes=5),
            "IsTruncated": False,
            "ServicesLastAccessed": [
                service("dynamodb", "Amazon DynamoDB", NOW - timedelta(days=200)),
                service("logs", "Amazon CloudWatch Logs", NOW - timedelta(hours=3)),
            ],
        },
        marker="page-2",
    )
    # The plain reload (no JavaScript) follows the job too.
    page = section(client.get(f"/roles/{ROLE}"))
    stub.assert_no_pending_responses()
    assert page.get("hx-get") is None and page.select_one("progress") is None
    assert "allow 4 services; it used 3" in " ".join(page.text.split())
    used = [r.select_one("code").text for r in page.select("table.last-accessed-used tbody tr")]
    assert used == ["logs", "s3", "dynamodb"]  # most recent first
    assert "eu-west-1" in page.select_one("table.last-accessed-used").text
    # Not used in ROLEDESK_REVIEW_UNUSED_DAYS (90): never, and 200 days ago.
    heading = page.find("h3", string=lambda s: bool(s and "candidates to remove" in s))
    assert heading.text == "Allowed but not used in 90 days: candidates to remove (2)"
    unused = [li.text for li in page.select("ul.last-accessed-unused li")]
    assert unused[0].startswith("Amazon DynamoDB dynamodb: last used ")
    assert unused[1] == "Amazon EC2 ec2: not used in the tracking period"
    assert "5 minutes ago" in page.text  # the report's age

    # The same report, held, on the role's review page: no AWS call.
    seeded.access_scan.run_now()
    review = section(client.get(f"/access-review/roles/{ROLE}"))
    stub.assert_no_pending_responses()
    assert len(review.select("ul.last-accessed-unused li")) == 2
    assert review.select_one("form input[name=back]")["value"] == "review"
    assert review.select_one("form button").text == "Ask AWS again"


def test_real_aws_failed_job_and_aws_errors_are_said_in_plain_words(
    client: Any, seeded: Services, stub: Stubber, clock: list[float]
) -> None:
    started(stub, seeded, JOBS["job-f"])
    assert ask(client).status_code == 303
    clock[0] += 2
    details(
        stub,
        JOBS["job-f"],
        {"JobStatus": "FAILED", "Error": {"Code": "x", "Message": "The role was deleted."}},
    )
    failed = section(client.get(f"/roles/{ROLE}"))
    assert "AWS could not build the report: The role was deleted." in failed.text
    assert failed.select("table, ul.last-accessed-unused") == []

    stub.add_client_error(
        "generate_service_last_accessed_details",
        service_error_code="AccessDenied",
        service_message="not authorized to perform iam:GenerateServiceLastAccessedDetails",
        http_status_code=403,
    )
    assert ask(client).status_code == 303
    denied = section(client.get(f"/roles/{ROLE}"))
    assert "lack a permission" in denied.text and "AccessDenied" in denied.text
    assert "Not available here" not in denied.text


def test_a_new_report_keeps_the_last_one_on_show_while_it_runs(
    seeded: Services, stub: Stubber, clock: list[float]
) -> None:
    reports = seeded.last_accessed
    started(stub, seeded, JOBS["job-a"])
    reports.start(ROLE, arn(seeded))
    clock[0] += 2
    details(
        stub,
        JOBS["job-a"],
        {
            "JobStatus": "COMPLETED",
            "JobCompletionDate": NOW,
            "ServicesLastAccessed": [service("s3", "Amazon S3", NOW)],
        },
    )
    assert reports.look(ROLE).state == "done"
    started(stub, seeded, JOBS["job-b"])
    again = reports.start(ROLE, arn(seeded))
    assert again.state == "running" and [s.namespace for s in again.used()] == ["s3"]
    stub.assert_no_pending_responses()


def test_unknown_role_and_plain_get_of_the_fragment(client: Any, seeded: Services) -> None:
    assert (
        client.get(
            "/access-review/roles/no-such-role/last-accessed", headers={"HX-Request": "true"}
        ).status_code
        == 404
    )
    plain = client.get(
        f"/access-review/roles/{ROLE}/last-accessed?back=review", follow_redirects=False
    )
    assert plain.status_code == 303
    assert plain.headers["location"] == f"/access-review/roles/{ROLE}#last-accessed"


def test_viewers_may_ask(client_as: Any, seeded: Services) -> None:
    viewer = client_as("viewer")
    assert ask(viewer).status_code == 303
    assert "Not available here" in section(viewer.get(f"/roles/{ROLE}")).text
