"""Step 1's service picker (issue 13): choose a service (the console's common ones first, or
search the whole catalogue), then one of its use cases, which sets the service principal.

A principal can still be typed for a service that is not in the catalogue ("Another service").
The picker's fields (`service_name`, `use_case`) are kept in the draft beside `service`, the
principal the trust policy is built from: `apply` derives that principal from the chosen use
case, so everything after step 1 sees only `service`, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.wizard import catalog
from app.wizard.catalog import UseCase

OTHER = "other"  # "Another service (type its principal)"


@dataclass(frozen=True)
class Picker:
    query: str
    services: list[str]  # shown in the list: every service, common first, or the matches
    chosen: str  # a catalogue service, OTHER, or ""
    cases: tuple[UseCase, ...]  # the chosen service's use cases
    case: UseCase | None  # the chosen use case

    @property
    def common(self) -> tuple[str, ...]:
        return tuple(s for s in catalog.COMMON if s in self.services) if not self.query else ()

    @property
    def others(self) -> list[str]:
        common = set(self.common)  # once, not once per service
        return [s for s in self.services if s not in common]


def apply(values: dict[str, str]) -> dict[str, str]:
    """Set `service` from the chosen use case (a service with a single use case has it chosen
    at once); clear a use case that does not belong to the chosen service."""
    name = values.get("service_name", "")
    if name in catalog.services():
        cases = catalog.cases_of(name)
        case = catalog.find_case(values.get("use_case", ""))
        if case is None or case.service != name:
            case = cases[0] if len(cases) == 1 else None
        values["use_case"] = case.key if case else ""
        values["service"] = case.principal if case else ""
    else:
        values["service_name"] = OTHER if name == OTHER else ""
        values["use_case"] = ""
    return values


def errors(values: dict[str, str]) -> dict[str, str]:
    """What the trust builder cannot say: a service chosen without its use case, nothing
    chosen at all, a service's name typed where its principal belongs."""
    if values.get("entity_type") != "service":
        return {}
    name = values.get("service_name", "")
    if name and name != OTHER:
        return {} if values.get("use_case") else {"use_case": f"Choose a use case for {name}."}
    typed = values.get("service", "").strip()
    if not typed:
        return {
            "service": "Choose a service above, or type the principal of a service that is "
            "not in the list."
        }
    named = catalog.service_named(typed)
    if named is not None:
        principal = catalog.cases_of(named)[0].principal
        return {
            "service": f"“{typed}” is a service's name, not its principal: choose {named} in "
            f"the list above, or type {principal}."
        }
    return {}


def build(values: dict[str, str], query: str = "") -> Picker:
    query = query.strip()[:64]
    name = values.get("service_name", "")
    cases = catalog.cases_of(name) if name and name != OTHER else ()
    shown = catalog.search_services(query)
    if cases and name not in shown:  # the chosen service stays in view (and in the form)
        shown = [name, *shown]
    return Picker(
        query=query,
        services=shown,
        chosen=name,
        cases=cases,
        case=catalog.find_case(values.get("use_case", "")),
    )
