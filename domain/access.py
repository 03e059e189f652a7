"""Object-level rules: which cases a person may read, where they may act, what personal data
they may see. Role-level rules (which role takes which action) are the table in actions.py."""

from domain.actions import Action
from domain.errors import Refusal
from domain.models import Actor, CaseState, Location
from domain.roles import Role

# Roles that see every case.
READ_ALL = frozenset({Role.SUPERVISOR, Role.ADMIN, Role.DISPATCHER})
# Roles that see the reporter's name and phone unmasked.
SEES_PERSONAL_DATA = frozenset({Role.HOTLINE, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN})
# Actions community staff may take only on cases in their own area.
PLACE_SCOPED_ACTIONS = frozenset({Action.REVIEW, Action.WHISTLE})


def covers(actor: Actor, place: Location) -> bool:
    """Whether the actor's district/street/community scope contains the place. Each claim the
    actor has narrows the scope; a claim the place lacks cannot be matched."""
    for claim, value in (("district", place.district), ("street", place.street),
                         ("community", place.community)):
        scope = getattr(actor, claim)
        if scope is not None and scope != value:
            return False
    return actor.district is not None


def read_refusal(actor: Actor, state: CaseState) -> Refusal | None:
    """None when the actor may read (and so act on) the case; otherwise the refusal."""
    role = actor.role
    if role in READ_ALL:
        return None
    if role in (Role.HOTLINE, Role.REPORTER):
        if state.opened_by == actor.id:
            return None
        return Refusal("not_your_case", f"{role.value} {actor.id} may read only the cases it opened.")
    if role == Role.OFFICER:
        if state.team is not None and state.team == actor.team:
            return None
        return Refusal("not_your_team", f"Case {state.case_id} is not assigned to team "
                                        f"'{actor.team}'.")
    if role == Role.DEPARTMENT:
        if actor.department in state.summoned_departments or (
                state.policy and actor.department in state.policy.departments):
            return None
        return Refusal("not_your_case", f"Case {state.case_id} does not concern department "
                                        f"'{actor.department}'.")
    if role in (Role.COMMUNITY, Role.INSPECTOR):
        if (role == Role.INSPECTOR and actor.district is None) or covers(actor, state.location):
            return None
        return Refusal("not_your_area", f"Case {state.case_id} is outside {actor.id}'s area.")
    return Refusal("not_your_case", f"Role '{role.value}' may not read cases.")


def mask_phone(phone: str) -> str:
    digits = phone.replace(" ", "")
    return digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"


def mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1)
