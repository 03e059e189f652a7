from enum import StrEnum


class Stage(StrEnum):
    REPORTED = "reported"
    ASSIGNED = "assigned"
    RECTIFYING = "rectifying"
    ESCALATED = "escalated"
    VERIFYING = "verifying"
    EVALUATING = "evaluating"
    REVIEWING = "reviewing"
    RECHECK_PENDING = "recheck_pending"
    RECHECKING = "rechecking"
    CLOSED = "closed"
    INVALID = "invalid"


TERMINAL_STAGES = frozenset({Stage.CLOSED, Stage.INVALID})
OPEN_STAGES = frozenset(set(Stage) - TERMINAL_STAGES)

STAGE_LABELS: dict[Stage, str] = {
    Stage.REPORTED: "待派单",
    Stage.ASSIGNED: "待签收",
    Stage.RECTIFYING: "整改中",
    Stage.ESCALATED: "吹哨报到中",
    Stage.VERIFYING: "待核查",
    Stage.EVALUATING: "待评价",
    Stage.REVIEWING: "社区复核中",
    Stage.RECHECK_PENDING: "待回头看",
    Stage.RECHECKING: "回头看中",
    Stage.CLOSED: "已办结",
    Stage.INVALID: "已作废",
}
