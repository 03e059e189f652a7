"""The case state machine: whether an action may be taken now, and what taking it does.

`check` raises `Refusal` and changes nothing; `apply` mutates the state and returns the event
the ledger records. Both are pure so the workflow stays a thin shell around them.
"""

from datetime import datetime, timedelta

from domain.actions import (ALLOWED_ROLES, ALLOWED_STAGES, SIGNAL_ACTIONS, TEAM_SCOPED_ACTIONS,
                            Action, actions_allowed_in)
from domain.access import PLACE_SCOPED_ACTIONS, covers
from domain.deadlines import add_limit
from domain.errors import Refusal
from domain.models import (SATISFIED_RATINGS, SYSTEM_ACTOR, Actor, CaseEvent, CaseIntake,
                           CaseState, Command)
from domain.stages import STAGE_LABELS, TERMINAL_STAGES, Stage

# The time-limited step a case waits on in each stage (see config categories' time_limits).
STEP_OF_STAGE = {
    Stage.ASSIGNED: "accept",
    Stage.RECTIFYING: "rectify",
    Stage.VERIFYING: "verify",
    Stage.REVIEWING: "review",
    Stage.RECHECKING: "recheck",
}


def open_case(intake: CaseIntake) -> tuple[CaseState, CaseEvent]:
    now = intake.opened_at
    state = CaseState(
        case_id=intake.case_id, source=intake.source, external_id=intake.external_id,
        description=intake.description, location=intake.location, urgency=intake.urgency,
        reporter=intake.reporter, attachments=intake.attachments,
        category_hint=intake.category_hint, policy=intake.policy, opened_by=intake.actor.id,
        evaluation_window_days=intake.evaluation_window_days,
        stage=Stage.REPORTED, created_at=now, updated_at=now, received_at=intake.received_at,
    )
    _enter(state, Stage.REPORTED, now)
    if intake.policy:
        # A known category routes itself to its team; the dispatcher can still re-assign.
        state.team = intake.policy.team
        _enter(state, Stage.ASSIGNED, now)
    return state, _event(state, intake.request_id, Action.OPEN, intake.actor, None, now,
                         note=intake.description, evidence=intake.attachments)


def check(state: CaseState, cmd: Command) -> None:
    action, actor = cmd.action, cmd.actor
    if state.stage in TERMINAL_STAGES:
        raise Refusal("case_closed",
                      f"Case {state.case_id} is {state.stage.value} "
                      f"({STAGE_LABELS[state.stage]}); it accepts no more actions.",
                      stage=state.stage.value, allowed=[])
    if actor.role not in ALLOWED_ROLES[action]:
        allowed_roles = ", ".join(sorted(ALLOWED_ROLES[action]))
        raise Refusal("role_not_allowed",
                      f"Role '{actor.role.value}' may not {action.value}; allowed: {allowed_roles}.")
    if state.stage not in ALLOWED_STAGES[action]:
        allowed = [a.value for a in actions_allowed_in(state.stage)]
        raise Refusal("stage_conflict",
                      f"Cannot {action.value} case {state.case_id} while it is "
                      f"{state.stage.value} ({STAGE_LABELS[state.stage]}); "
                      f"allowed now: {', '.join(allowed)}.",
                      stage=state.stage.value, allowed=allowed)
    if action in TEAM_SCOPED_ACTIONS and actor.team != state.team:
        raise Refusal("not_your_team",
                      f"Case {state.case_id} is assigned to team '{state.team}', "
                      f"not to '{actor.team}'.")
    if action in PLACE_SCOPED_ACTIONS and not covers(actor, state.location):
        raise Refusal("not_your_area",
                      f"Case {state.case_id} is in {_place(state)}, outside {actor.id}'s area.")
    p = cmd.payload
    if action in (Action.VERIFY, Action.RECHECK) and state.rectified_by \
            and state.rectified_by.id == actor.id:
        raise Refusal("self_verification",
                      f"{actor.id} submitted this round's rectification and may not "
                      f"{action.value} it; another inspector must.")
    if action == Action.ASSIGN and p.policy is None and state.policy is None:
        raise Refusal("category_required",
                      f"Case {state.case_id} has no category yet; assign it with a category.")
    if action == Action.REJECT and p.duplicate_of == state.case_id:
        raise Refusal("invalid_duplicate", "A case cannot be a duplicate of itself.")


def apply(state: CaseState, cmd: Command, now: datetime) -> CaseEvent:
    """Apply an action already passed by `check`."""
    action, p, actor = cmd.action, cmd.payload, cmd.actor
    before = state.stage
    note, evidence = "", []
    match action:
        case Action.ASSIGN:
            if p.policy:
                state.policy = p.policy
            state.team = p.team
            note = p.note
            _enter(state, Stage.ASSIGNED, now)
        case Action.REJECT:
            state.invalid_reason = p.reason
            state.duplicate_of = p.duplicate_of
            note = p.reason
            _enter(state, Stage.INVALID, now)
        case Action.ACCEPT:
            note = p.note
            _enter(state, Stage.RECTIFYING, now)
        case Action.RETURN:
            state.returns += 1
            state.team = None
            note = p.reason
            _enter(state, Stage.REPORTED, now)
        case Action.SUBMIT_RECTIFICATION:
            state.rectified_by = actor
            state.rectification_report = p.report
            note, evidence = p.report, p.evidence
            _enter(state, Stage.VERIFYING, now)
        case Action.VERIFY:
            note, evidence = p.note, p.evidence
            if p.passed:
                _enter(state, Stage.EVALUATING, now)
            else:
                _next_round(state, now)
        case Action.EVALUATE:
            state.rating, state.evaluation = p.rating, "rated"
            note = p.comment
            if p.rating in SATISFIED_RATINGS:
                _await_recheck(state, now)
            else:
                _enter(state, Stage.REVIEWING, now)
        case Action.NO_RESPONSE:
            state.evaluation = "no_response"
            note = "评价期内未收到评价，按未评价处理"
            _await_recheck(state, now)
        case Action.REVIEW:
            note = p.note
            if p.decision == "uphold":
                _await_recheck(state, now)
            else:
                _next_round(state, now)
        case Action.BRING_RECHECK_FORWARD | Action.RECHECK_DUE:
            note = getattr(p, "note", "")
            _enter(state, Stage.RECHECKING, now)
        case Action.RECHECK:
            note, evidence = p.note, p.evidence
            if p.result == "consolidated":
                _enter(state, Stage.CLOSED, now)
            else:
                state.rebounds += 1
                _next_round(state, now)
        case Action.SUPPLEMENT:
            state.supplements += 1
            note, evidence = p.content, p.attachments
        case Action.URGE:
            state.urges += 1
            note = p.note
        case _:
            raise ValueError(f"no transition for {action}")
    state.updated_at = now
    return _event(state, cmd.request_id, action, actor, before, now, note=note, evidence=evidence,
                  payload=p.model_dump(mode="json", exclude={"kind", "policy"}))


def system_command(action: Action, request_id: str) -> Command:
    return Command(request_id=request_id, actor=SYSTEM_ACTOR, payload={"kind": action.value})


def is_signal(action: Action) -> bool:
    return action in SIGNAL_ACTIONS


def _enter(state: CaseState, stage: Stage, now: datetime) -> None:
    state.stage = stage
    state.stage_times[stage] = now
    state.deadlines = {}
    step = STEP_OF_STAGE.get(stage)
    if step and state.policy and step in state.policy.limits:
        state.deadlines[step] = add_limit(now, state.policy.limits[step])
    if stage == Stage.EVALUATING:
        state.deadlines["evaluate"] = now + timedelta(days=_evaluation_window(state))


def _next_round(state: CaseState, now: datetime) -> None:
    state.round += 1
    state.rectified_by = None
    state.rectification_report = None
    state.rating = None
    state.evaluation = None
    state.recheck_due_at = None
    _enter(state, Stage.RECTIFYING, now)


def _await_recheck(state: CaseState, now: datetime) -> None:
    _enter(state, Stage.RECHECK_PENDING, now)
    days = state.policy.recheck_interval_days if state.policy else 30
    state.recheck_due_at = now + timedelta(days=days)


def _evaluation_window(state: CaseState) -> int:
    return state.policy.evaluation_window_days if state.policy else state.evaluation_window_days


def _event(state: CaseState, request_id: str, action: Action, actor: Actor, before: Stage | None,
           now: datetime, note: str = "", evidence: list[str] | None = None,
           payload: dict | None = None) -> CaseEvent:
    state.seq += 1
    return CaseEvent(case_id=state.case_id, seq=state.seq, request_id=request_id, action=action,
                     actor=actor, from_stage=before, to_stage=state.stage, occurred_at=now,
                     round=state.round, note=note, evidence=evidence or [],
                     payload=payload or {})



def _place(state: CaseState) -> str:
    loc = state.location
    return "".join(part for part in (loc.district, loc.street, loc.community) if part)
