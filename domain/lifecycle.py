"""The case state machine: whether an action may be taken now, and what taking it does.

`check` raises `Refusal` and changes nothing; `apply` mutates the state and returns the event
the ledger records. Both are pure so the workflow stays a thin shell around them.
"""

from datetime import datetime, timedelta

from domain.actions import (ALLOWED_ROLES, ALLOWED_STAGES, TEAM_SCOPED_ACTIONS,
                            WHISTLE_ACTIONS, Action, actions_allowed_in)
from domain.access import PLACE_SCOPED_ACTIONS, covers
from domain.calendar import BusinessCalendar, local_text
from domain.errors import Refusal
from domain.models import (SATISFIED_RATINGS, SYSTEM_ACTOR, Actor, CaseEvent, CaseIntake,
                           CaseState, Command, ExtensionRequest, StepClock, WhistleSummary)
from domain.roles import Role
from domain.stages import STAGE_LABELS, TERMINAL_STAGES, Stage
from domain.whistles import whistle_workflow_id

# The time-limited step a case waits on in each stage (see config categories' time_limits).
# A whistle helps the rectification: its clock keeps running while the case is escalated.
STEP_OF_STAGE = {
    Stage.ASSIGNED: "accept",
    Stage.RECTIFYING: "rectify",
    Stage.ESCALATED: "rectify",
    Stage.VERIFYING: "verify",
    Stage.REVIEWING: "review",
    Stage.RECHECKING: "recheck",
}
STEP_LABELS = {"accept": "签收", "rectify": "整改", "verify": "核查", "review": "社区复核",
               "recheck": "回头看"}


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
    _enter(state, Stage.REPORTED, now, intake.calendar, Action.OPEN)
    if intake.policy:
        # A known category routes itself to its team; the dispatcher can still re-assign.
        state.team = intake.policy.team
        _enter(state, Stage.ASSIGNED, now, intake.calendar, Action.OPEN)
    return state, _event(state, intake.request_id, Action.OPEN, intake.actor, None, now,
                         note=intake.description, evidence=intake.attachments)


def check(state: CaseState, cmd: Command, now: datetime) -> None:
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
    if action in WHISTLE_ACTIONS:
        raise Refusal("not_a_case_action",
                      f"{action.value} is taken on a whistle of case {state.case_id}, "
                      "not on the case itself.")
    if action in TEAM_SCOPED_ACTIONS and actor.role == Role.OFFICER and actor.team != state.team:
        raise Refusal("not_your_team",
                      f"Case {state.case_id} is assigned to team '{state.team}', "
                      f"not to '{actor.team}'.")
    if action in PLACE_SCOPED_ACTIONS and actor.role == Role.COMMUNITY \
            and not covers(actor, state.location):
        raise Refusal("not_your_area",
                      f"Case {state.case_id} is in {place_of(state)}, outside {actor.id}'s area.")
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
    if action == Action.WHISTLE and len(set(p.departments)) != len(p.departments):
        raise Refusal("invalid_whistle", "Each department may be summoned only once per whistle.")
    if action == Action.REQUEST_EXTENSION:
        _check_extension_request(state, now)
    if action == Action.DECIDE_EXTENSION and state.extension is None:
        raise Refusal("no_extension_pending",
                      f"Case {state.case_id} has no extension request waiting for a decision.")


def _check_extension_request(state: CaseState, now: datetime) -> None:
    clock = state.clock
    if clock is None:
        raise Refusal("no_time_limit", f"Case {state.case_id} has no time limit to extend.")
    if state.extension is not None:
        raise Refusal("extension_pending",
                      f"An extension of case {state.case_id} requested by "
                      f"{state.extension.requested_by.id} is still waiting for a decision.")
    if now >= clock.due_at:
        raise Refusal("extension_too_late",
                      f"The {STEP_LABELS[clock.step]} deadline of case {state.case_id} passed at "
                      f"{local_text(clock.due_at)}; an extension must be requested before it.",
                      due_at=clock.due_at.isoformat())


def apply(state: CaseState, cmd: Command, now: datetime,
          calendar: BusinessCalendar) -> CaseEvent:
    """Apply an action already passed by `check`."""
    action, p, actor = cmd.action, cmd.payload, cmd.actor
    before = state.stage
    note, evidence = "", []

    def enter(stage: Stage) -> None:
        _enter(state, stage, now, calendar, action)

    match action:
        case Action.ASSIGN:
            if p.policy:
                state.policy = p.policy
            state.team = p.team
            note = p.note
            # A new team gets a fresh 签收 limit.
            _stop_clock(state, now, action)
            enter(Stage.ASSIGNED)
        case Action.REJECT:
            state.invalid_reason = p.reason
            state.duplicate_of = p.duplicate_of
            note = p.reason
            enter(Stage.INVALID)
        case Action.ACCEPT:
            note = p.note
            enter(Stage.RECTIFYING)
        case Action.RETURN:
            state.returns += 1
            state.team = None
            note = p.reason
            enter(Stage.REPORTED)
        case Action.SUBMIT_RECTIFICATION:
            state.rectified_by = actor
            state.rectification_report = p.report
            note, evidence = p.report, p.evidence
            enter(Stage.VERIFYING)
        case Action.VERIFY:
            note, evidence = p.note, p.evidence
            if state.first_verification is None:
                state.first_verification = "passed" if p.passed else "failed"
            if p.passed:
                enter(Stage.EVALUATING)
            else:
                _next_round(state, now, calendar, action)
        case Action.EVALUATE:
            state.rating, state.evaluation = p.rating, "rated"
            note = p.comment
            if p.rating in SATISFIED_RATINGS:
                _await_recheck(state, now, calendar, action)
            else:
                enter(Stage.REVIEWING)
        case Action.NO_RESPONSE:
            state.evaluation = "no_response"
            note = "评价期内未收到评价，按未评价处理"
            _await_recheck(state, now, calendar, action)
        case Action.REVIEW:
            note = p.note
            if p.decision == "uphold":
                _await_recheck(state, now, calendar, action)
            else:
                _next_round(state, now, calendar, action)
        case Action.BRING_RECHECK_FORWARD | Action.RECHECK_DUE:
            note = getattr(p, "note", "")
            enter(Stage.RECHECKING)
        case Action.RECHECK:
            note, evidence = p.note, p.evidence
            state.rechecks += 1
            if p.result == "consolidated":
                enter(Stage.CLOSED)
            else:
                state.rebounds += 1
                _next_round(state, now, calendar, action)
        case Action.WHISTLE:
            no = len(state.whistles) + 1
            state.whistles.append(WhistleSummary(
                no=no, workflow_id=whistle_workflow_id(state.case_id, no),
                kind=p.whistle_kind, kind_name=p.whistle_kind_name, departments=p.departments,
                reason=p.reason, blown_by=actor, blown_at=now))
            note = p.reason
            enter(Stage.ESCALATED)
        case Action.WHISTLE_CLOSED:
            whistle = state.whistles[p.whistle_no - 1]
            whistle.status, whistle.closed_at = p.status, now
            whistle.late_departments = p.late_departments
            note = p.note
            enter(Stage.RECTIFYING)
        case Action.REQUEST_EXTENSION:
            clock = state.clock
            state.extension = ExtensionRequest(
                request_id=cmd.request_id, step=clock.step, requested_by=actor,
                requested_at=now, extend_by=p.extend_by, reason=p.reason,
                current_due_at=clock.due_at,
                requested_due_at=calendar.extend(clock.due_at, p.extend_by))
            note = p.reason
        case Action.DECIDE_EXTENSION:
            request, state.extension = state.extension, None
            note = p.note
            if p.approved:
                _extend(state, request, now, calendar)
        case Action.REMIND:
            state.clock.reminded_at = now
            note = f"{STEP_LABELS[p.step]}时限将至，截止{local_text(p.due_at)}"
        case Action.OVERDUE:
            clock = state.clock
            clock.overdue, clock.overdue_at = True, clock.overdue_at or now
            note = f"{STEP_LABELS[p.step]}已超时，截止{local_text(p.due_at)}"
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


def system_command(action: Action, request_id: str, **fields) -> Command:
    return Command(request_id=request_id, actor=SYSTEM_ACTOR,
                   payload={"kind": action.value, **fields})


def next_timer(state: CaseState) -> tuple[datetime, Command] | None:
    """What happens by itself next if nobody acts, and when."""
    stage, clock = state.stage, state.clock
    due: list[tuple[datetime, Command]] = []
    if stage == Stage.EVALUATING:
        due.append((state.deadlines["evaluate"], system_command(
            Action.NO_RESPONSE, f"no_response:{state.round}:{state.seq}")))
    if stage == Stage.RECHECK_PENDING:
        due.append((state.recheck_due_at, system_command(
            Action.RECHECK_DUE, f"recheck_due:{state.round}:{state.seq}")))
    if clock is not None:
        key = f"{clock.step}:{clock.round}:{clock.due_at.isoformat()}"
        if clock.reminded_at is None and clock.remind_at < clock.due_at:
            due.append((clock.remind_at, system_command(
                Action.REMIND, f"remind:{key}", step=clock.step, due_at=clock.due_at)))
        elif not clock.overdue:
            due.append((clock.due_at, system_command(
                Action.OVERDUE, f"overdue:{key}", step=clock.step, due_at=clock.due_at)))
    return min(due, key=lambda item: item[0]) if due else None


def _enter(state: CaseState, stage: Stage, now: datetime, calendar: BusinessCalendar,
           by: Action) -> None:
    state.stage = stage
    state.stage_times[stage] = now
    step = STEP_OF_STAGE.get(stage)
    clock = state.clock
    if clock is not None and (clock.step != step or clock.round != state.round):
        _stop_clock(state, now, by)
    if step and state.clock is None and state.policy and step in state.policy.limits:
        limit = state.policy.limits[step]
        due = calendar.add_limit(now, limit)
        state.steps.append(StepClock(
            step=step, round=state.round, limit=limit, started_at=now, due_at=due,
            original_due_at=due,
            remind_at=calendar.share_point(now, limit, state.policy.reminder_share)))
    _set_deadlines(state)


def _stop_clock(state: CaseState, now: datetime, by: Action) -> None:
    """The step is done (or handed to someone else): its record stays, its request lapses."""
    clock = state.clock
    if clock is not None:
        clock.completed_at, clock.completed_by = now, by
    state.extension = None


def _set_deadlines(state: CaseState) -> None:
    clock = state.clock
    state.deadlines = {clock.step: clock.due_at} if clock else {}
    if state.stage == Stage.EVALUATING:
        entered = state.stage_times[Stage.EVALUATING]
        state.deadlines["evaluate"] = entered + timedelta(days=_evaluation_window(state))


def _extend(state: CaseState, request: ExtensionRequest, now: datetime,
            calendar: BusinessCalendar) -> None:
    clock = state.clock
    clock.due_at = request.requested_due_at
    clock.extensions += 1
    clock.overdue = clock.due_at <= now
    # One more 催办, at the same share of the extra time (a clock exists only under a policy).
    clock.reminded_at = None
    clock.remind_at = max(now, calendar.share_point(request.current_due_at, request.extend_by,
                                                    state.policy.reminder_share))
    _set_deadlines(state)


def _next_round(state: CaseState, now: datetime, calendar: BusinessCalendar,
                by: Action) -> None:
    state.round += 1
    state.rectified_by = None
    state.rectification_report = None
    state.rating = None
    state.evaluation = None
    state.recheck_due_at = None
    _enter(state, Stage.RECTIFYING, now, calendar, by)


def _await_recheck(state: CaseState, now: datetime, calendar: BusinessCalendar,
                   by: Action) -> None:
    _enter(state, Stage.RECHECK_PENDING, now, calendar, by)
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



def place_of(state: CaseState) -> str:
    loc = state.location
    return "".join(part for part in (loc.district, loc.street, loc.community) if part)
