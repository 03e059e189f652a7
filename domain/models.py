"""Inputs, state and events of a case, shared by the workflow, the ledger and the API.

All are pydantic models so they travel through Temporal with the pydantic data converter and
validate the same way wherever they are built.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from domain.actions import Action
from domain.calendar import BusinessCalendar
from domain.roles import Role
from domain.stages import Stage

Text = Annotated[str, Field(max_length=4000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
RequiredText = Annotated[str, Field(min_length=1, max_length=4000)]
EvidenceUrl = Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)]
Evidence = Annotated[list[EvidenceUrl], Field(max_length=20)]
# A time limit: whole number + unit (m/h/d calendar minutes, hours, days; wh/wd working hours, days).
LimitText = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,3}(m|h|d|wh|wd)$",
                                 examples=["3wd", "8wh", "2d"])]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def snapshot(self) -> Self:
        """An independent copy, made from the model's own dump: a fifth of what a deep copy
        costs, and workflows take one for every transition they record."""
        return type(self).model_validate(self.model_dump())


class Source(StrEnum):
    HOTLINE = "hotline"        # 12345 热线
    GRID = "grid"              # 网格员
    SNAPSHOT = "snapshot"      # 随手拍
    PATROL = "patrol"          # 包保领导巡查
    DEVICE = "device"          # 一键呼
    OTHER = "other"


SOURCE_LABELS = {
    Source.HOTLINE: "12345热线", Source.GRID: "网格员上报", Source.SNAPSHOT: "随手拍",
    Source.PATROL: "领导巡查", Source.DEVICE: "一键呼", Source.OTHER: "其他",
}


class Urgency(StrEnum):
    NORMAL = "normal"          # 一般
    URGENT = "urgent"          # 紧急
    EMERGENCY = "emergency"    # 特急


class Rating(StrEnum):
    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    UNSATISFIED = "unsatisfied"
    VERY_UNSATISFIED = "very_unsatisfied"


RATING_LABELS = {
    Rating.VERY_SATISFIED: "非常满意", Rating.SATISFIED: "满意",
    Rating.BASICALLY_SATISFIED: "基本满意", Rating.UNSATISFIED: "不满意",
    Rating.VERY_UNSATISFIED: "非常不满意",
}
SATISFIED_RATINGS = frozenset({Rating.VERY_SATISFIED, Rating.SATISFIED, Rating.BASICALLY_SATISFIED})


class Actor(Model):
    id: ShortText
    name: Annotated[str, Field(max_length=100)] = ""
    role: Role
    team: ShortText | None = None
    department: ShortText | None = None
    district: ShortText | None = None
    street: ShortText | None = None
    community: ShortText | None = None


SYSTEM_ACTOR = Actor(id="system", name="系统", role=Role.SYSTEM)


class Location(Model):
    district: ShortText
    street: ShortText | None = None
    community: ShortText | None = None
    address: RequiredText
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lng: Annotated[float, Field(ge=-180, le=180)] | None = None


class Reporter(Model):
    name: Annotated[str, Field(max_length=100)] | None = None
    phone: Annotated[str, Field(pattern=r"^[0-9+\- ]{3,20}$")] | None = None


class CasePolicy(Model):
    """What the category says about a case, resolved from config when the case is routed.

    Carried in the workflow so a case keeps the rules it was opened under and workflow code
    never reads files.
    """
    category: ShortText
    category_name: ShortText
    team: ShortText
    departments: list[ShortText]
    # step name (accept, rectify, verify, review, recheck) -> limit such as "4wh" or "2d"
    limits: dict[str, str]
    recheck_interval_days: Annotated[int, Field(ge=1, le=365)] = 30
    evaluation_window_days: Annotated[int, Field(ge=1, le=60)] = 7
    # 催办 is sent once this share of a step's limit has elapsed.
    reminder_share: Annotated[float, Field(gt=0, lt=1)] = 0.8


class CaseIntake(Model):
    case_id: ShortText
    request_id: ShortText
    # When bihuan received the case; part of the intake so that the API and the workflow derive
    # the same opening state from it.
    opened_at: datetime
    source: Source
    external_id: ShortText | None = None
    description: RequiredText
    location: Location
    urgency: Urgency = Urgency.NORMAL
    reporter: Reporter = Reporter()
    attachments: Evidence = []
    # When the source received the report (e.g. the hotline call), if it says.
    received_at: datetime | None = None
    actor: Actor
    # The category as the source named it, kept when it could not be mapped.
    category_hint: ShortText | None = None
    # Set when the category is known: the case is routed to its team at once.
    policy: CasePolicy | None = None
    # Evaluation window for cases that reach evaluation without a category policy.
    evaluation_window_days: Annotated[int, Field(ge=1, le=60)] = 7
    # Working hours, weekends, holidays and make-up days that working-time limits follow. Carried
    # in the intake so workflow code never reads files and replays compute the same deadlines.
    calendar: BusinessCalendar = BusinessCalendar()
    # History events after which the case continues as new (None: the workflow's default).
    history_event_limit: Annotated[int, Field(ge=50)] | None = None
    # Set by whoever starts a case now: it runs the lean loop without asking for the
    # `lean-loop` patch, whose marker and TemporalChangeVersion upsert cost two history events.
    # Absent from the intakes of older histories, which still ask.
    lean_loop: bool = False
    # Set when the opening was recorded in the ledger before the workflow started
    # (runtime.cases.record_and_start): the workflow does not write it again, and a rebuild
    # derives it from this intake.
    opening_recorded: bool = False


# ---- action payloads: one model per action, told apart by `kind` -------------------------------

class AssignPayload(Model):
    kind: Literal["assign"] = "assign"
    team: ShortText
    # Set when the dispatcher (re)classifies the case; resolved from config by the API.
    policy: CasePolicy | None = None
    note: Text = ""


class RejectPayload(Model):
    kind: Literal["reject"] = "reject"
    reason: RequiredText
    duplicate_of: ShortText | None = None


class AcceptPayload(Model):
    kind: Literal["accept"] = "accept"
    note: Text = ""


class ReturnPayload(Model):
    kind: Literal["return"] = "return"
    reason: RequiredText


class RectificationPayload(Model):
    kind: Literal["submit_rectification"] = "submit_rectification"
    report: RequiredText
    evidence: Evidence = []


class VerifyPayload(Model):
    kind: Literal["verify"] = "verify"
    passed: bool
    note: Text = ""
    evidence: Evidence = []


def _rating_from_label(value: Any) -> Any:
    # The hotline speaks in the five Chinese levels; accept them as well as the codes.
    if not isinstance(value, str):
        return value
    by_label = {label: code for code, label in RATING_LABELS.items()}
    return by_label.get(value, value)


RatingInput = Annotated[Rating, BeforeValidator(_rating_from_label)]


class EvaluatePayload(Model):
    kind: Literal["evaluate"] = "evaluate"
    rating: RatingInput
    comment: Text = ""


class ReviewPayload(Model):
    kind: Literal["review"] = "review"
    decision: Literal["uphold", "reopen"]
    note: RequiredText


class BringRecheckForwardPayload(Model):
    kind: Literal["bring_recheck_forward"] = "bring_recheck_forward"
    note: Text = ""


class RecheckPayload(Model):
    kind: Literal["recheck"] = "recheck"
    result: Literal["consolidated", "rebounded"]
    note: Text = ""
    evidence: Evidence = []


class SupplementPayload(Model):
    kind: Literal["supplement"] = "supplement"
    content: RequiredText
    attachments: Evidence = []


class UrgePayload(Model):
    kind: Literal["urge"] = "urge"
    note: RequiredText


class WhistlePayload(Model):
    """吹哨: summon departments to report in. The API resolves the kind's name and limit."""
    kind: Literal["whistle"] = "whistle"
    whistle_kind: ShortText
    whistle_kind_name: Annotated[str, Field(max_length=200)] = ""
    report_in_limit: LimitText = "24h"
    departments: Annotated[list[ShortText], Field(min_length=1, max_length=10)]
    reason: RequiredText


class RequestExtensionPayload(Model):
    kind: Literal["request_extension"] = "request_extension"
    # Added to the current deadline, on the business calendar for working units.
    extend_by: LimitText
    reason: RequiredText


class DecideExtensionPayload(Model):
    kind: Literal["decide_extension"] = "decide_extension"
    approved: bool
    note: Text = ""


class WhistleClosedPayload(Model):
    kind: Literal["whistle_closed"] = "whistle_closed"
    whistle_no: int
    status: Literal["completed", "ended"]
    late_departments: list[str] = []
    note: Text = ""


class StepTimerPayload(Model):
    """催办 or 超时 of the step the case waits on, fired by the workflow's timer."""
    kind: Literal["remind", "overdue"]
    step: ShortText
    due_at: datetime


class SystemPayload(Model):
    kind: Literal["no_response", "recheck_due"]


Payload = Annotated[
    Union[AssignPayload, RejectPayload, AcceptPayload, ReturnPayload, RectificationPayload,
          VerifyPayload, EvaluatePayload, ReviewPayload, BringRecheckForwardPayload,
          RecheckPayload, SupplementPayload, UrgePayload, WhistlePayload,
          RequestExtensionPayload, DecideExtensionPayload, WhistleClosedPayload,
          StepTimerPayload, SystemPayload],
    Field(discriminator="kind"),
]


class Command(Model):
    request_id: ShortText
    actor: Actor
    payload: Payload

    @property
    def action(self) -> Action:
        return Action(self.payload.kind)


# ---- state and events --------------------------------------------------------------------------

class StepClock(Model):
    """The time limit of one waiting step in one round: kept after the step is done, so the
    record of lateness and extensions stays for assessment."""
    step: str
    round: int
    limit: str
    started_at: datetime
    due_at: datetime
    # The deadline the limit first gave; due_at moves only by an approved extension.
    original_due_at: datetime
    remind_at: datetime
    reminded_at: datetime | None = None
    # First time the step was found past its deadline; stays even if an extension follows.
    overdue_at: datetime | None = None
    # Past its deadline now (an approved extension can lift it).
    overdue: bool = False
    extensions: int = 0
    completed_at: datetime | None = None
    # The action that ended the step: accept ends 签收 by signing; assign or return end it too.
    completed_by: Action | None = None

    @property
    def open(self) -> bool:
        return self.completed_at is None

    @property
    def late(self) -> bool:
        """Completed (or still open) after its deadline as finally agreed."""
        return self.overdue or (self.completed_at is not None and self.completed_at > self.due_at)


class ExtensionRequest(Model):
    request_id: str
    step: str
    requested_by: Actor
    requested_at: datetime
    extend_by: str
    reason: str
    current_due_at: datetime
    requested_due_at: datetime


class WhistleSummary(Model):
    no: int
    workflow_id: str
    kind: str
    kind_name: str = ""
    departments: list[str]
    reason: str
    blown_by: Actor
    blown_at: datetime
    status: Literal["open", "completed", "ended"] = "open"
    closed_at: datetime | None = None
    late_departments: list[str] = []


class CaseState(Model):
    case_id: str
    source: Source
    external_id: str | None = None
    description: str
    location: Location
    urgency: Urgency
    reporter: Reporter = Reporter()
    attachments: list[str] = []
    category_hint: str | None = None
    policy: CasePolicy | None = None
    evaluation_window_days: int = 7
    # Who opened the case: the hotline and reporters may read only their own cases.
    opened_by: str
    team: str | None = None
    stage: Stage
    round: int = 1
    rebounds: int = 0
    # 回头看 carried out; rebounds of them found the problem back.
    rechecks: int = 0
    returns: int = 0
    # The outcome of the case's first on-site verification (解决率 counts it).
    first_verification: Literal["passed", "failed"] | None = None
    created_at: datetime
    updated_at: datetime
    # When the source received the report (e.g. the hotline call), if it says.
    received_at: datetime | None = None
    # When the case last entered each stage it has reached.
    stage_times: dict[Stage, datetime] = {}
    # Deadline of the step the case is waiting on now, by step name.
    deadlines: dict[str, datetime] = {}
    recheck_due_at: datetime | None = None
    rectified_by: Actor | None = None
    rectification_report: str | None = None
    rating: Rating | None = None
    evaluation: Literal["rated", "no_response"] | None = None
    duplicate_of: str | None = None
    invalid_reason: str | None = None
    supplements: int = 0
    urges: int = 0
    # Every time-limited step so far, the current one last while it is open.
    steps: list[StepClock] = []
    extension: ExtensionRequest | None = None
    whistles: list[WhistleSummary] = []
    seq: int = 0

    @property
    def category(self) -> str | None:
        return self.policy.category if self.policy else None

    @property
    def clock(self) -> StepClock | None:
        """The time limit the case runs against now, if any."""
        return self.steps[-1] if self.steps and self.steps[-1].open else None

    @property
    def overdue(self) -> bool:
        clock = self.clock
        return clock is not None and clock.overdue

    @property
    def open_whistle(self) -> WhistleSummary | None:
        return next((w for w in self.whistles if w.status == "open"), None)

    @property
    def summoned_departments(self) -> set[str]:
        return {d for w in self.whistles for d in w.departments}


class CaseEvent(Model):
    case_id: str
    seq: int
    request_id: str
    action: Action
    actor: Actor
    from_stage: Stage | None
    to_stage: Stage
    occurred_at: datetime
    round: int
    note: str = ""
    evidence: list[str] = []
    payload: dict[str, Any] = {}


class Audience(StrEnum):
    TEAM = "team"                  # the action team handling the case
    DEPARTMENT = "department"      # a functional department (e.g. one summoned by a whistle)
    INSPECTORS = "inspectors"      # 核查 and 回头看
    COMMUNITY = "community"        # street/community staff of the case's area (社区复核)
    SUPERVISORS = "supervisors"    # the leading group's office: 督办
    HOTLINE = "hotline"            # the 12345 hotline, for callbacks to the resident


class Notification(Model):
    """A message bihuan owes someone outside it. Written to the ledger's outbox in the same
    transaction as the event that caused it, then delivered to webhooks from there.

    Never carries the reporter's name or phone: receivers fetch the case if they may see them."""
    # Stable across retries and replays: receivers de-duplicate on it. Sent as an HTTP header,
    # so visible ASCII only.
    event_id: Annotated[str, Field(pattern=r"^[!-~]{1,200}$")]
    # reminder (催办), overdue (超时), supervision (督办), whistle_summoned, whistle_late,
    # whistle_reminder, whistle_closed, extension_requested, extension_decided, ...
    kind: ShortText
    case_id: ShortText
    audience: Audience
    # The team or department name for TEAM/DEPARTMENT audiences.
    recipient: ShortText | None = None
    title: ShortText
    body: Text = ""
    occurred_at: datetime
    data: dict[str, Any] = {}


class LedgerEntry(Model):
    """One transition as the ledger stores it: the event and the case as it stands after it,
    with the notifications it causes."""
    event: CaseEvent
    state: CaseState
    notifications: list[Notification] = []


class ActionOutcome(Model):
    case_id: str
    action: Action
    request_id: str
    from_stage: Stage
    to_stage: Stage
    seq: int


class ActionResult(ActionOutcome):
    state: CaseState
