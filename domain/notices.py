"""Who is told what when something happens to a case or a whistle.

Pure: the workflows attach these to the ledger entry of the event, and the ledger writes them
to its outbox in the same transaction. Event ids are derived from the event, so a retried
write or a replay produces the same ids and receivers can de-duplicate.
"""

from datetime import datetime

from domain.actions import Action
from domain.calendar import local_text
from domain.lifecycle import STEP_LABELS, open_case, place_of
from domain.models import (Audience, CaseEvent, CaseIntake, CaseState, LedgerEntry,
                           Notification)
from domain.whistles import WhistleEvent, WhistleState

# Who must act in each time-limited step.
STEP_AUDIENCE = {"accept": Audience.TEAM, "rectify": Audience.TEAM, "verify": Audience.INSPECTORS,
                 "review": Audience.COMMUNITY, "recheck": Audience.INSPECTORS}


def ledger_entry(event: CaseEvent, state: CaseState) -> LedgerEntry:
    """What the ledger is handed for a case's event: the event, the state after it, and who
    is to be told."""
    return LedgerEntry(event=event, state=state, notifications=for_case_event(event, state))


def opening_entry(intake: CaseIntake) -> LedgerEntry:
    """The entry of a case's opening: a pure function of its intake, so the API, the workflow
    and a rebuild all derive the same one."""
    state, opened = open_case(intake)
    return ledger_entry(opened, state)


def for_case_event(event: CaseEvent, state: CaseState) -> list[Notification]:
    p, where = event.payload, place_of(state)
    subject = f"{state.case_id}（{where}）"
    notes: list[tuple[str, Audience, str | None, str]] = []
    match event.action:
        case Action.OPEN | Action.ASSIGN if state.team and event.to_stage == "assigned":
            notes.append(("assigned", Audience.TEAM, state.team, f"新派案件待签收：{subject}"))
        case Action.REMIND:
            audience, recipient = _responsible(state, p["step"])
            notes.append(("reminder", audience, recipient,
                          f"催办：{subject}{STEP_LABELS[p['step']]}将于{_local(p['due_at'])}到期"))
        case Action.OVERDUE:
            audience, recipient = _responsible(state, p["step"])
            label = STEP_LABELS[p["step"]]
            notes.append(("overdue", audience, recipient,
                          f"超时：{subject}{label}已超过时限（{_local(p['due_at'])}）"))
            notes.append(("supervision", Audience.SUPERVISORS, None,
                          f"督办：{subject}{label}超时，责任方{recipient or audience.value}"))
        case Action.URGE:
            audience, recipient = _responsible_now(state)
            notes.append(("supervision", audience, recipient, f"督办：{subject}{event.note}"))
        case Action.WHISTLE:
            whistle = state.whistles[-1]
            for department in whistle.departments:
                notes.append(("whistle_summoned", Audience.DEPARTMENT, department,
                              f"吹哨报到（{whistle.kind_name or whistle.kind}）：{subject}"
                              f"，请立即报到。事由：{whistle.reason}"))
        case Action.WHISTLE_CLOSED:
            notes.append(("whistle_closed", Audience.TEAM, state.team,
                          f"吹哨结束：{subject}第{p['whistle_no']}次吹哨已"
                          f"{'办结' if p['status'] == 'completed' else '由督办人结束'}，"
                          "请继续整改并提交"))
        case Action.REQUEST_EXTENSION:
            ext = state.extension
            notes.append(("extension_requested", Audience.SUPERVISORS, None,
                          f"延期申请：{subject}{STEP_LABELS[ext.step]}申请延至"
                          f"{_local(ext.requested_due_at)}，理由：{ext.reason}"))
        case Action.DECIDE_EXTENSION:
            verdict = "已批准" if p["approved"] else "未批准"
            notes.append(("extension_decided", Audience.TEAM, state.team,
                          f"延期申请{verdict}：{subject}{event.note}"))
    return [_notice(f"{event.case_id}:{event.seq}:{i}", kind, event.case_id, audience, recipient,
                    title, event, {"action": event.action.value, "stage": event.to_stage.value})
            for i, (kind, audience, recipient, title) in enumerate(notes, 1)]


def for_whistle_event(event: WhistleEvent, state: WhistleState) -> list[Notification]:
    subject = f"{state.case_id}第{state.whistle_no}次吹哨（{state.kind_name}）"
    department = event.department
    notes: list[tuple[str, Audience, str | None, str]] = []
    match event.action:
        case Action.WHISTLE_REMIND:
            notes.append(("whistle_reminder", Audience.DEPARTMENT, department,
                          f"报到催办：{subject}，{event.note}"))
        case Action.WHISTLE_LATE:
            notes.append(("whistle_reminder", Audience.DEPARTMENT, department,
                          f"报到超时：{subject}，请立即报到"))
            notes.append(("whistle_late", Audience.SUPERVISORS, None,
                          f"督办：{department}未在时限内报到，{subject}"))
    return [_notice(f"{state.workflow_id}:{event.seq}:{i}", kind, event.case_id, audience,
                    recipient, title, event, {"action": event.action.value,
                                              "whistle_no": state.whistle_no,
                                              "department": department})
            for i, (kind, audience, recipient, title) in enumerate(notes, 1)]


def _notice(key: str, kind: str, case_id: str, audience: Audience, recipient: str | None,
            title: str, event: CaseEvent | WhistleEvent, data: dict) -> Notification:
    # The position in the event's list keeps ids ASCII (recipients are Chinese names) and stable.
    return Notification(event_id=f"{key}:{kind}", kind=kind,
                        case_id=case_id, audience=audience, recipient=recipient,
                        title=title[:200], body=event.note[:4000], occurred_at=event.occurred_at,
                        data=data)


def _responsible(state: CaseState, step: str) -> tuple[Audience, str | None]:
    audience = STEP_AUDIENCE[step]
    if audience == Audience.TEAM:
        return audience, state.team
    if audience == Audience.COMMUNITY:
        return audience, state.location.community or state.location.street
    return audience, state.location.district


def _responsible_now(state: CaseState) -> tuple[Audience, str | None]:
    clock = state.clock
    if clock is not None:
        return _responsible(state, clock.step)
    return (Audience.TEAM, state.team) if state.team else (Audience.SUPERVISORS, None)


def _local(moment: datetime | str) -> str:
    # Event payloads carry times as ISO text.
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return local_text(moment, "%m-%d %H:%M")
