"""Request and response bodies of the HTTP API."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, Field, computed_field, create_model
from pydantic.json_schema import SkipJsonSchema

from domain import models as m
from domain import whistles as w
from domain.access import SEES_PERSONAL_DATA, mask_name, mask_phone
from domain.actions import ACTION_LABELS, ALLOWED_ROLES, Action, actions_allowed_in
from domain.stages import STAGE_LABELS, Stage

ExternalId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,100}$",
                                  description="The source's own id, e.g. the 12345 ticket number")]


class OpenCaseRequest(BaseModel):
    source: m.Source
    external_id: ExternalId | None = None
    category: Annotated[str, Field(max_length=100, description=(
        "Category code or Chinese name (see GET /catalog/categories). A known category routes "
        "the case to its team at once; an unknown one leaves it for the dispatcher."))] | None = None
    description: m.RequiredText
    location: m.Location
    urgency: m.Urgency = m.Urgency.NORMAL
    reporter: m.Reporter = m.Reporter()
    attachments: m.Evidence = []
    received_at: Annotated[AwareDatetime | None, Field(
        description="When the source received the report, e.g. the hotline call time")] = None

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{
        "source": "hotline", "external_id": "2026112200123", "category": "暴露垃圾",
        "description": "吉日巷口垃圾堆积三天无人清运，气味很大",
        "location": {"district": "城关区", "street": "吉日街道", "community": "吉日社区",
                     "address": "吉日巷12号旁", "lat": 29.6535, "lng": 91.1335},
        "urgency": "normal", "reporter": {"name": "王女士", "phone": "13800000000"}}]}}


class AssignRequest(BaseModel):
    model_config = {"extra": "forbid"}
    team: m.ShortText
    category: Annotated[str, Field(max_length=100, description=(
        "Re-classify the case: category code or Chinese name. Required when the case has none."
    ))] | None = None
    note: m.Text = ""


class WhistleRequest(BaseModel):
    model_config = {"extra": "forbid"}
    kind: Annotated[str, Field(max_length=32, description=(
        "emergency 应急哨, tough 攻坚哨 or routine 日常哨 (GET /catalog/whistle-kinds); each has "
        "its own report-in limit"))]
    departments: Annotated[list[m.ShortText], Field(min_length=1, max_length=10, description=(
        "Departments to summon, by full or short name (GET /catalog/departments)"))]
    reason: m.RequiredText


def _request_model(payload: type[BaseModel]) -> type[BaseModel]:
    """The request body of an action: its payload without the `kind` tag the route implies.
    The acting person is never in the body: it comes from the bearer token."""
    kind = payload.model_fields["kind"]
    return create_model(payload.__name__.replace("Payload", "Request"), __base__=payload,
                        kind=(SkipJsonSchema[kind.annotation], kind.default))


class ActionSpec(BaseModel):
    action: Action
    body: Any
    summary: str
    description: str
    example: dict
    signal: bool = False


def _spec(action: Action, body, description: str, example: dict,
          signal: bool = False) -> ActionSpec:
    roles = ", ".join(sorted(ALLOWED_ROLES[action]))
    return ActionSpec(action=action, body=body, signal=signal, example=example,
                      description=f"{description}\n\nRoles: {roles}.",
                      summary=f"{ACTION_LABELS[action]} ({action.value})")


ACTIONS: list[ActionSpec] = [
    _spec(Action.ASSIGN, AssignRequest,
          "派单/改派: dispatch the case to a team, or re-dispatch it (from reported or assigned).",
          {"team": "环境卫生", "category": "exposed_garbage", "note": "请环卫专班处理"}),
    _spec(Action.REJECT, _request_model(m.RejectPayload),
          "作废: reject an invalid report, or a duplicate naming the original case.",
          {"reason": "重复上报", "duplicate_of": "hotline-2026112200100"}),
    _spec(Action.ACCEPT, _request_model(m.AcceptPayload),
          "签收: the assigned team acknowledges the case and starts rectifying.",
          {"note": "已签收，今日安排清运"}),
    _spec(Action.RETURN, _request_model(m.ReturnPayload),
          "退单: the team returns a wrongly dispatched case to the dispatcher; reason required.",
          {"reason": "该路段属于市政设施专班管辖"}),
    _spec(Action.SUBMIT_RECTIFICATION, _request_model(m.RectificationPayload),
          "提交整改: report the rectification with evidence photos; the case goes to verification.",
          {"report": "已清运垃圾约2吨并消杀", "evidence": ["https://img.example.cn/after-1.jpg"]}),
    _spec(Action.VERIFY, _request_model(m.VerifyPayload),
          "核查: on-site verification. Pass sends the case to evaluation; fail sends it back for "
          "another round. The inspector may not be the one who submitted the rectification.",
          {"passed": True, "note": "现场已清理干净"}),
    _spec(Action.EVALUATE, _request_model(m.EvaluatePayload),
          "回访评价: the caller's rating (非常满意/满意/基本满意/不满意/非常不满意, or the codes). "
          "Unsatisfied ratings go to community review.",
          {"rating": "满意", "comment": "处理及时"}),
    _spec(Action.REVIEW, _request_model(m.ReviewPayload),
          "社区复核: review an unsatisfied rating: uphold the result or reopen the case.",
          {"decision": "uphold", "note": "经复核，问题已解决，诉求人要求超出范围"}),
    _spec(Action.BRING_RECHECK_FORWARD, _request_model(m.BringRecheckForwardPayload),
          "抽查: a supervisor brings the 回头看 recheck forward.",
          {"note": "节前抽查"}),
    _spec(Action.RECHECK, _request_model(m.RecheckPayload),
          "回头看: consolidated closes the case; rebounded reopens it for another round.",
          {"result": "consolidated", "note": "回访现场，未反弹"}),
    _spec(Action.WHISTLE, WhistleRequest,
          "吹哨: while rectifying, summon departments that must report in (报到) within the "
          "kind's limit and stay until their part is done. Community staff for cases in their "
          "area, or an officer of the case's team. The case is escalated until the whistle ends.",
          {"kind": "tough", "departments": ["市住建局", "拉萨供电公司"],
           "reason": "违建涉及供电线路，需住建、供电部门联合处置"}),
    _spec(Action.REQUEST_EXTENSION, _request_model(m.RequestExtensionPayload),
          "申请延期: the case's team asks for more time before the current step's deadline "
          "passes (e.g. extend_by \"2wd\"). Only a supervisor's approval moves the deadline.",
          {"extend_by": "2wd", "reason": "需等待供电公司停电检修窗口"}),
    _spec(Action.DECIDE_EXTENSION, _request_model(m.DecideExtensionPayload),
          "审批延期: a supervisor approves or denies the pending extension request.",
          {"approved": True, "note": "同意延期两个工作日"}),
    _spec(Action.SUPPLEMENT, _request_model(m.SupplementPayload),
          "补充诉求: the caller adds information. Recorded in the history; the stage is unchanged.",
          {"content": "市民补充：垃圾堆旁还有废弃家具"}, signal=True),
    _spec(Action.URGE, _request_model(m.UrgePayload),
          "督办: a supervisor's urging note. Recorded in the history; the stage is unchanged.",
          {"note": "请于今日18:00前完成整改"}, signal=True),
]


class ReporterView(BaseModel):
    name: str | None = None
    phone: str | None = None
    masked: bool = Field(description="True when the caller's role may not see personal data")


class CaseView(m.CaseState):
    reporter: ReporterView
    stage_label: str
    allowed_actions: list[Action]

    @computed_field(description="The step the case waits on now is past its deadline")
    @property
    def overdue(self) -> bool:
        return super().overdue

    @classmethod
    def of(cls, state: m.CaseState, viewer: m.Actor) -> "CaseView":
        """The case as `viewer` may see it: personal data masked unless their role needs it."""
        name, phone = state.reporter.name, state.reporter.phone
        masked = viewer.role not in SEES_PERSONAL_DATA
        if masked:
            name, phone = name and mask_name(name), phone and mask_phone(phone)
        reporter = ReporterView(name=name, phone=phone, masked=masked)
        return cls(**state.model_dump(exclude={"reporter"}), reporter=reporter,
                   stage_label=STAGE_LABELS[state.stage],
                   allowed_actions=actions_allowed_in(state.stage))


class ActionResponse(m.ActionOutcome):
    case: CaseView

    @classmethod
    def of(cls, result: m.ActionResult, viewer: m.Actor) -> "ActionResponse":
        return cls(**result.model_dump(exclude={"state"}), case=CaseView.of(result.state, viewer))


class SignalAccepted(BaseModel):
    case_id: str
    action: Action
    request_id: str
    message: str


class HistoryEntry(BaseModel):
    seq: int
    # Set on the steps of a whistle, which number their own seq.
    whistle_no: int | None = None
    department: str | None = None
    occurred_at: datetime
    action: Action
    action_label: str
    actor: m.Actor
    from_stage: Stage | None
    from_label: str | None
    to_stage: Stage
    to_label: str
    round: int
    note: str
    evidence: list[str]
    payload: dict
    summary: str


class CaseHistory(BaseModel):
    case_id: str
    events: list[HistoryEntry]


# ---- whistles -----------------------------------------------------------------------------------

class WhistleActionSpec(BaseModel):
    action: Action
    path: str
    body: Any
    summary: str
    description: str
    example: dict


WHISTLE_ACTIONS: list[WhistleActionSpec] = [
    WhistleActionSpec(
        action=Action.REPORT_IN, path="report_in", body=_request_model(w.ReportInPayload),
        summary="报到 (report_in)", example={"note": "市住建局张工已到现场"},
        description="A summoned department reports in. Late if after the whistle's report-in "
                    "limit; the lateness stays on record. Role: department (summoned ones only)."),
    WhistleActionSpec(
        action=Action.REPORT_DONE, path="report_done", body=_request_model(w.ReportDonePayload),
        summary="部门办结 (report_done)",
        example={"note": "已完成线路迁改", "evidence": ["https://img.example.cn/line.jpg"]},
        description="A department that reported in reports its part done. When every part is "
                    "done the whistle ends and the case returns to rectifying. Role: department."),
    WhistleActionSpec(
        action=Action.END_WHISTLE, path="end", body=_request_model(w.EndWhistlePayload),
        summary="结束吹哨 (end)", example={"reason": "协调会已明确分工，转常规整改"},
        description="A supervisor ends the whistle with a reason; the case returns to rectifying. "
                    "Role: supervisor."),
]


class WhistleActionResponse(BaseModel):
    case_id: str
    whistle_no: int
    action: Action
    request_id: str
    whistle: w.WhistleState


class WhistleList(BaseModel):
    case_id: str
    whistles: list[w.WhistleState]
