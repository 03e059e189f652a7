"""Custom search attributes that let the Temporal UI and visibility queries filter cases."""

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from domain.models import CaseState

CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
CASE_TEAM = SearchAttributeKey.for_keyword("CaseTeam")
CASE_DISTRICT = SearchAttributeKey.for_keyword("CaseDistrict")
CASE_SOURCE = SearchAttributeKey.for_keyword("CaseSource")
CASE_CATEGORY = SearchAttributeKey.for_keyword("CaseCategory")
CASE_OVERDUE = SearchAttributeKey.for_bool("CaseOverdue")

ALL_KEYS = (CASE_STAGE, CASE_TEAM, CASE_DISTRICT, CASE_SOURCE, CASE_CATEGORY, CASE_OVERDUE)


def of_state(state: CaseState, with_stage: bool = True) -> TypedSearchAttributes:
    """CaseStage only for cases on the old loop: cases started now leave it unset rather than
    keep it current at one history event per stage change; filter by stage in the ledger."""
    stage = [SearchAttributePair(CASE_STAGE, state.stage.value)] if with_stage else []
    return TypedSearchAttributes(stage + [
        SearchAttributePair(CASE_TEAM, state.team or ""),
        SearchAttributePair(CASE_DISTRICT, state.location.district),
        SearchAttributePair(CASE_SOURCE, state.source.value),
        SearchAttributePair(CASE_CATEGORY, state.category or ""),
        SearchAttributePair(CASE_OVERDUE, state.overdue),
    ])

# Type names as `temporal server start-dev --search-attribute NAME=TYPE` spells them.
CLI_TYPES = {"KEYWORD": "Keyword", "BOOL": "Bool"}


def cli_flags() -> list[str]:
    flags: list[str] = []
    for key in ALL_KEYS:
        flags += ["--search-attribute", f"{key.name}={CLI_TYPES[key.indexed_value_type.name]}"]
    return flags
