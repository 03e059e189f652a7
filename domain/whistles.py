"""吹哨报到: a whistle summons departments to a case; each must report in (报到) within the
kind's limit and later report its part done. One whistle is one child workflow of the case.

Pure like `lifecycle`: `check` refuses, `apply` changes the state and returns the event the
ledger keeps for the 吹哨报到双考核 assessment.
"""

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import Field

from domain.actions import ACTION_LABELS, ALLOWED_ROLES, Action
from domain.calendar import BusinessCalendar
from domain.errors import Refusal
from domain.models import (SYSTEM_ACTOR, Actor, Evidence, LimitText, Model, Notification,
                           RequiredText, ShortText, Text)


def whistle_workflow_id(case_id: str, no: int) -> str:
    return f"{case_id}/whistle-{no}"


class WhistleStart(Model):
    case_id: ShortText
    whistle_no: int
    request_id: ShortText
    kind: ShortText
    kind_name: str = ""
    reason: RequiredText
    departments: list[ShortText]
    report_in_limit: LimitText
    reminder_share: float = 0.8
    blown_by: Actor
    blown_at: datetime
    # The lead team, told when the whistle closes.
    team: str | None = None
    calendar: BusinessCalendar = BusinessCalendar()


class Summons(Model):
    """One department's part in a whistle: the record the 双考核 assesses."""
    department: str
    summoned_at: datetime
    due_at: datetime
    remind_at: datetime
    reminded_at: datetime | None = None
    reported_at: datetime | None = None
    reported_by: Actor | None = None
    late: bool = False
    late_at: datetime | None = None
    # Reminders sent after the deadline: 事不完、人不撤, it stays summoned and is reminded again.
    reminders: int = 0
    next_reminder_at: datetime | None = None
    done_at: datetime | None = None
    done_by: Actor | None = None
    done_note: str = ""
    evidence: list[str] = []


class WhistleState(Model):
    case_id: str
    whistle_no: int
    workflow_id: str
    kind: str
    kind_name: str
    reason: str
    report_in_limit: str
    blown_by: Actor
    blown_at: datetime
    status: Literal["open", "completed", "ended"] = "open"
    closed_at: datetime | None = None
    ended_by: Actor | None = None
    end_reason: str = ""
    summons: list[Summons]
    seq: int = 0

    def summons_of(self, department: str | None) -> Summons | None:
        return next((s for s in self.summons if s.department == department), None)

    @property
    def late_departments(self) -> list[str]:
        return [s.department for s in self.summons if s.late]


class ReportInPayload(Model):
    kind: Literal["report_in"] = "report_in"
    note: Text = ""


class ReportDonePayload(Model):
    kind: Literal["report_done"] = "report_done"
    note: RequiredText
    evidence: Evidence = []


class EndWhistlePayload(Model):
    kind: Literal["end_whistle"] = "end_whistle"
    reason: RequiredText


class WhistleTimerPayload(Model):
    kind: Literal["whistle_remind", "whistle_late"]
    department: str


WhistlePayload = Annotated[
    Union[ReportInPayload, ReportDonePayload, EndWhistlePayload, WhistleTimerPayload],
    Field(discriminator="kind"),
]


class WhistleCommand(Model):
    request_id: ShortText
    actor: Actor
    payload: WhistlePayload

    @property
    def action(self) -> Action:
        return Action(self.payload.kind)


class WhistleEvent(Model):
    case_id: str
    whistle_no: int
    seq: int
    request_id: str
    action: Action
    actor: Actor
    department: str | None = None
    occurred_at: datetime
    note: str = ""
    evidence: list[str] = []
    payload: dict = {}


class WhistleEntry(Model):
    event: WhistleEvent
    state: WhistleState
    notifications: list[Notification] = []


def start(ws: WhistleStart) -> tuple[WhistleState, WhistleEvent]:
    cal, now, limit = ws.calendar, ws.blown_at, ws.report_in_limit
    state = WhistleState(
        case_id=ws.case_id, whistle_no=ws.whistle_no,
        workflow_id=whistle_workflow_id(ws.case_id, ws.whistle_no), kind=ws.kind,
        kind_name=ws.kind_name or ws.kind, reason=ws.reason, report_in_limit=limit,
        blown_by=ws.blown_by, blown_at=now,
        summons=[Summons(department=d, summoned_at=now, due_at=cal.add_limit(now, limit),
                         remind_at=cal.share_point(now, limit, ws.reminder_share))
                 for d in ws.departments])
    return state, _event(state, ws.request_id, Action.SUMMON, ws.blown_by, now, note=ws.reason,
                         payload={"departments": ws.departments, "kind": ws.kind,
                                  "report_in_limit": limit})


def check(state: WhistleState, cmd: WhistleCommand) -> None:
    action, actor = cmd.action, cmd.actor
    label = ACTION_LABELS[action]
    if state.status != "open":
        raise Refusal("whistle_closed",
                      f"Whistle {state.whistle_no} of case {state.case_id} is already "
                      f"{state.status}; it accepts no more actions.")
    if actor.role not in ALLOWED_ROLES[action]:
        allowed = ", ".join(sorted(ALLOWED_ROLES[action]))
        raise Refusal("role_not_allowed",
                      f"Role '{actor.role.value}' may not {action.value}; allowed: {allowed}.")
    if action == Action.END_WHISTLE:
        return
    summons = state.summons_of(actor.department)
    if summons is None:
        raise Refusal("not_summoned",
                      f"Whistle {state.whistle_no} of case {state.case_id} does not summon "
                      f"department '{actor.department}'.")
    if action == Action.REPORT_IN and summons.reported_at is not None:
        raise Refusal("already_reported",
                      f"{summons.department} already reported in ({label}) to whistle "
                      f"{state.whistle_no} of case {state.case_id}.")
    if action == Action.REPORT_DONE:
        if summons.reported_at is None:
            raise Refusal("not_reported_in",
                          f"{summons.department} must report in before reporting its part done.")
        if summons.done_at is not None:
            raise Refusal("already_done",
                          f"{summons.department} already reported its part done.")


def apply(state: WhistleState, cmd: WhistleCommand, now: datetime,
          calendar: BusinessCalendar) -> WhistleEvent:
    action, p, actor = cmd.action, cmd.payload, cmd.actor
    note, evidence, department = "", [], getattr(actor, "department", None)
    match action:
        case Action.REPORT_IN:
            s = state.summons_of(actor.department)
            s.reported_at, s.reported_by, s.next_reminder_at = now, actor, None
            note = p.note
        case Action.REPORT_DONE:
            s = state.summons_of(actor.department)
            s.done_at, s.done_by, s.done_note, s.evidence = now, actor, p.note, p.evidence
            note, evidence = p.note, p.evidence
            if all(x.done_at for x in state.summons):
                state.status, state.closed_at = "completed", now
        case Action.END_WHISTLE:
            state.status, state.closed_at = "ended", now
            state.ended_by, state.end_reason = actor, p.reason
            note = p.reason
        case Action.WHISTLE_REMIND:
            s = state.summons_of(p.department)
            department = s.department
            if s.late:
                s.reminders += 1
                s.next_reminder_at = calendar.add_limit(now, state.report_in_limit)
                note = f"{s.department}仍未报到，再次催促（第{s.reminders}次）"
            else:
                s.reminded_at = now
                note = f"{s.department}报到时限将至"
        case Action.WHISTLE_LATE:
            s = state.summons_of(p.department)
            department = s.department
            s.late, s.late_at = True, now
            s.next_reminder_at = calendar.add_limit(now, state.report_in_limit)
            note = f"{s.department}未按时报到，已督办"
        case _:
            raise ValueError(f"no whistle transition for {action}")
    return _event(state, cmd.request_id, action, actor, now, note=note, evidence=evidence,
                  department=department, payload=p.model_dump(mode="json", exclude={"kind"}))


def next_timer(state: WhistleState) -> tuple[datetime, WhistleCommand] | None:
    """The earliest reminder or lateness mark due among departments yet to report in."""
    if state.status != "open":
        return None
    due: list[tuple[datetime, WhistleCommand]] = []
    for s in state.summons:
        if s.reported_at is not None:
            continue
        if not s.late and s.reminded_at is None and s.remind_at < s.due_at:
            due.append((s.remind_at, _system(Action.WHISTLE_REMIND, s, "pre")))
        elif not s.late:
            due.append((s.due_at, _system(Action.WHISTLE_LATE, s, "late")))
        elif s.next_reminder_at is not None:
            due.append((s.next_reminder_at, _system(Action.WHISTLE_REMIND, s, str(s.reminders))))
    return min(due, key=lambda item: item[0]) if due else None


def _system(action: Action, s: Summons, key: str) -> WhistleCommand:
    return WhistleCommand(request_id=f"{action.value}:{s.department}:{key}", actor=SYSTEM_ACTOR,
                          payload={"kind": action.value, "department": s.department})


def _event(state: WhistleState, request_id: str, action: Action, actor: Actor, now: datetime,
           note: str = "", evidence: list[str] | None = None, department: str | None = None,
           payload: dict | None = None) -> WhistleEvent:
    state.seq += 1
    return WhistleEvent(case_id=state.case_id, whistle_no=state.whistle_no, seq=state.seq,
                        request_id=request_id, action=action, actor=actor,
                        department=department, occurred_at=now, note=note,
                        evidence=evidence or [], payload=payload or {})
