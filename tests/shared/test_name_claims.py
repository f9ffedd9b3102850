"""Two processes creating `MW-EC2-A` and `mw-ec2-a` at the same instant: exactly one role
exists afterwards (app.shared.names). Each "process" is its own Services (engine, shared
state, roles list) on one real database, driven from real threads, and then real operating
system processes, on SQLite and PostgreSQL, over the real moto server (which, unlike IAM,
would accept both spellings)."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from app import migrate
from app.audit.audited import AuditContext
from app.services import Services, build_services
from app.settings import Settings
from app.wizard.create import RoleCreator, existing_role_name
from app.wizard.steps import CreatePlan

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
SPELLINGS = ("MW-EC2-A", "mw-ec2-a")


def plan(name: str) -> CreatePlan:
    return CreatePlan(
        name=name,
        path="/",
        description="",
        max_session_duration=3600,
        tags=(),
        trust_policy=TRUST,
        policy_arns=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
        boundary_arn=None,
        inline_name=None,
        inline_document=None,
        instance_profile=True,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    migrate.upgrade(url)
    return url


def roles_named(endpoint: str, name: str) -> list[str]:
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    found = [
        r["RoleName"]
        for page in iam.get_paginator("list_roles").paginate()
        for r in page["Roles"]
        if r["RoleName"].lower() == name.lower()
    ]
    profiles = [
        p["InstanceProfileName"]
        for page in iam.get_paginator("list_instance_profiles").paginate()
        for p in page["InstanceProfiles"]
        if p["InstanceProfileName"].lower() == name.lower()
    ]
    assert len(profiles) == len(found)  # a refused create left no profile behind
    return found


def create(services: Services, name: str) -> tuple[bool, str | None]:
    outcome = RoleCreator(services).run(plan(name), AuditContext(actor="test"))
    return outcome.ok, outcome.error.code if outcome.error else None


def check_outcomes(outcomes: list[tuple[bool, str | None]], endpoint: str) -> None:
    assert sorted(outcomes) == [(False, "EntityAlreadyExists"), (True, None)]
    assert len(roles_named(endpoint, "mw-ec2-a")) == 1


def test_two_threads_of_two_processes_create_one_role(shared_url, sandbox):
    made = [
        build_services(Settings(database_url=shared_url), sandbox_endpoint=sandbox.endpoint_url)
        for _ in SPELLINGS
    ]
    try:
        for services in made:
            services.inventory.page()  # each holds its roles list, as a serving process does
        start = threading.Barrier(len(made))

        def race(index: int) -> tuple[bool, str | None]:
            start.wait()
            return create(made[index], SPELLINGS[index])

        with ThreadPoolExecutor(len(made)) as pool:
            outcomes = list(pool.map(race, range(len(made))))
        check_outcomes(outcomes, sandbox.endpoint_url)
        # Afterwards either process's wizard check names the role, in any spelling.
        for services in made:
            assert existing_role_name(services, "Mw-Ec2-A") in SPELLINGS
    finally:
        for services in made:
            services.db.dispose()


def _create_in_process(url: str, endpoint: str, name: str, start: Any, results: Any) -> None:
    services = build_services(Settings(database_url=url), sandbox_endpoint=endpoint)
    try:
        services.inventory.page()
        start.wait(60)
        results.put(create(services, name))
    finally:
        services.db.dispose()


def test_two_operating_system_processes_create_one_role(shared_url, sandbox):
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(len(SPELLINGS))
    results = context.Queue()
    children = [
        context.Process(
            target=_create_in_process,
            args=(shared_url, sandbox.endpoint_url, name, start, results),
        )
        for name in SPELLINGS
    ]
    for child in children:
        child.start()
    try:
        outcomes = [results.get(timeout=120) for _ in children]
    finally:
        for child in children:
            child.join(30)
    assert [child.exitcode for child in children] == [0, 0]
    check_outcomes(outcomes, sandbox.endpoint_url)
