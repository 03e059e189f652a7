"""The 12345 hotline's side of a case: the work order as the platform sends it, when a new
ticket is the same problem as an open case (并单), and which steps the platform is told of.

Pure: the API maps work orders with it and the ledger derives the callbacks from each recorded
event, so a retried or rebuilt event yields the same callback with the same event id.
"""

import math
from typing import Annotated

from pydantic import AwareDatetime, Field

from domain.actions import Action
from domain.lifecycle import STEP_LABELS, place_of
from domain.models import (Audience, CaseEvent, CaseState, Evidence, Location, Model,
                           Notification, RatingInput, RequiredText, Reporter)
from domain.stages import STAGE_LABELS, TERMINAL_STAGES, Stage

TicketNo = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,100}$",
                                description="The platform's work order number (工单编号)")]


class WorkOrder(Model):
    """A 12345 work order (工单) as the platform delivers it."""
    ticket_no: TicketNo
    call_time: AwareDatetime = Field(description="When the caller rang (来电时间)")
    caller: Reporter = Field(Reporter(), description="The caller (来电人): name and phone")
    appeal_type: Annotated[str, Field(min_length=1, max_length=20)] = Field(
        "投诉", description="诉求类型: 投诉, 举报, 求助, 建议, 咨询 …")
    content: RequiredText = Field(description="What the caller said (诉求内容)")
    address: Location = Field(description="Where: district, street, community, address and, "
                                          "when the platform has them, coordinates")
    category_code: Annotated[str, Field(min_length=1, max_length=32)] = Field(
        description="The platform's own category code (事项分类编码)")
    category_name: Annotated[str, Field(max_length=100)] = Field(
        "", description="The platform's name for its category, kept when the code is unmapped")
    urgency: Annotated[str, Field(min_length=1, max_length=10)] = Field(
        "一般", description="一般/紧急/特急, the platform's numeric codes 1/2/3, or ours")
    attachments: Evidence = []

    def description(self) -> str:
        return f"【12345{self.appeal_type}】{self.content}"

    def category_hint(self) -> str:
        """What the dispatcher sees of an unmapped category (cases keep 100 characters)."""
        name = f" {self.category_name}" if self.category_name else ""
        return f"12345:{self.category_code}{name}"[:100]


class FollowUpResult(Model):
    """The caller's answer to the platform's follow-up call (回访)."""
    rating: RatingInput = Field(
        description="非常满意/满意/基本满意/不满意/非常不满意, or very_satisfied … very_unsatisfied")
    resolved: bool = Field(description="The caller says the problem is solved")
    comment: Annotated[str, Field(max_length=2000)] = ""
    called_at: AwareDatetime | None = Field(None, description="When the follow-up call was made")

    def note(self) -> str:
        said = "已解决" if self.resolved else "未解决"
        return f"12345回访：{said}" + (f"。{self.comment}" if self.comment else "")


# ---- 并单 --------------------------------------------------------------------------------------

EARTH_RADIUS_M = 6_371_000.0


def distance_m(a: Location, b: Location) -> float:
    """Great-circle distance between two located places, in metres."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlng = lat2 - lat1, math.radians(b.lng - a.lng)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlng / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def same_place(new: Location, open_case: Location, within_m: float) -> bool:
    """Whether a new report is about the same spot as an open case: within `within_m` metres
    when both carry coordinates, otherwise the same grid (district, street and community, the
    community named on both)."""
    if None not in (new.lat, new.lng, open_case.lat, open_case.lng):
        return distance_m(new, open_case) <= within_m
    return (new.community is not None and new.community == open_case.community
            and new.street == open_case.street and new.district == open_case.district)


def duplicates_of(category: str, place: Location, candidates: list[CaseState],
                  within_m: float) -> list[CaseState]:
    """The open cases a new ticket of `category` at `place` repeats, oldest first: the first is
    the one to merge into, the others stand in if it ends in the meantime."""
    matches = [c for c in candidates
               if c.category == category and c.stage not in TERMINAL_STAGES
               and same_place(place, c.location, within_m)]
    return sorted(matches, key=lambda c: (c.created_at, c.case_id))


# ---- callbacks -----------------------------------------------------------------------------------

CALLBACK_TITLES = {
    "accepted": "已签收，正在处置", "rectified": "已整改，待核查", "verified": "已核查通过，请回访",
    "closed": "已办结", "invalid": "已作废", "reopened": "问题反弹，重新整改",
    "overdue": "已超时，已督办",
}


def callback_kind(event: CaseEvent) -> str | None:
    """What the hotline is told of this event, if anything."""
    match event.action:
        case Action.ACCEPT:
            return "accepted"
        case Action.SUBMIT_RECTIFICATION:
            return "rectified"
        case Action.VERIFY if event.to_stage == Stage.EVALUATING:
            return "verified"
        case Action.RECHECK if event.to_stage == Stage.CLOSED:
            return "closed"
        case Action.REJECT:
            return "invalid"
        case Action.REVIEW | Action.RECHECK if event.to_stage == Stage.RECTIFYING:
            return "reopened"
        case Action.OVERDUE:
            return "overdue"
    return None


def callback(event: CaseEvent, state: CaseState, tickets: list[str]) -> Notification | None:
    """The callback the platform gets for `event`, or None. `tickets` are the case's work
    orders (its own and those merged into it), whose callers the platform calls back.

    `sequence` is the event's number in the case: it only grows, so the receiver can put
    callbacks in order; gaps are the steps the hotline is not told of."""
    kind = callback_kind(event)
    if kind is None or not tickets:
        return None
    data: dict = {"sequence": event.seq, "ticket": tickets[0], "tickets": tickets,
                  "stage": event.to_stage.value, "stage_label": STAGE_LABELS[event.to_stage],
                  "team": state.team, "round": event.round}
    if state.deadlines:
        data["deadlines"] = {k: v.isoformat() for k, v in state.deadlines.items()}
    if kind == "overdue":
        data["step"] = event.payload["step"]
        data["due_at"] = event.payload["due_at"]
    if kind == "invalid":
        data["reason"] = state.invalid_reason
        data["duplicate_of"] = state.duplicate_of
    if kind == "verified":
        data["evaluate_by"] = state.deadlines["evaluate"].isoformat()
    title = f"12345工单{tickets[0]}（{place_of(state)}）{CALLBACK_TITLES[kind]}"
    if kind == "overdue":
        title += f"：{STEP_LABELS[event.payload['step']]}"
    return Notification(
        event_id=f"{event.case_id}:{event.seq}:hotline:{kind}", kind=f"hotline_{kind}",
        case_id=event.case_id, audience=Audience.HOTLINE, recipient=None, title=title[:200],
        body=event.note[:4000], occurred_at=event.occurred_at, data=data)
