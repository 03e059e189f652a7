"""The one table of what may happen to a case: in which stage, by which role.

The workflow's validators and the API's documentation both read this table, so the rules
cannot drift apart.
"""

from enum import StrEnum

from domain.roles import Role
from domain.stages import OPEN_STAGES, Stage


class Action(StrEnum):
    OPEN = "open"
    ASSIGN = "assign"
    REJECT = "reject"
    ACCEPT = "accept"
    RETURN = "return"
    SUBMIT_RECTIFICATION = "submit_rectification"
    VERIFY = "verify"
    EVALUATE = "evaluate"
    REVIEW = "review"
    BRING_RECHECK_FORWARD = "bring_recheck_forward"
    RECHECK = "recheck"
    SUPPLEMENT = "supplement"
    URGE = "urge"
    WHISTLE = "whistle"
    REQUEST_EXTENSION = "request_extension"
    DECIDE_EXTENSION = "decide_extension"
    # Taken on a whistle (the child workflow), not on the case itself.
    REPORT_IN = "report_in"
    REPORT_DONE = "report_done"
    END_WHISTLE = "end_whistle"
    # Done by timers and by the workflows themselves, never by a request.
    NO_RESPONSE = "no_response"
    RECHECK_DUE = "recheck_due"
    REMIND = "remind"
    OVERDUE = "overdue"
    WHISTLE_CLOSED = "whistle_closed"
    SUMMON = "summon"
    WHISTLE_REMIND = "whistle_remind"
    WHISTLE_LATE = "whistle_late"


ACTION_LABELS: dict[Action, str] = {
    Action.OPEN: "受理立案",
    Action.ASSIGN: "派单/改派",
    Action.REJECT: "作废(无效/重复)",
    Action.ACCEPT: "签收",
    Action.RETURN: "退单",
    Action.SUBMIT_RECTIFICATION: "提交整改",
    Action.VERIFY: "核查",
    Action.EVALUATE: "回访评价",
    Action.REVIEW: "社区复核",
    Action.BRING_RECHECK_FORWARD: "提前回头看(抽查)",
    Action.RECHECK: "回头看",
    Action.SUPPLEMENT: "补充诉求",
    Action.URGE: "督办",
    Action.WHISTLE: "吹哨",
    Action.REQUEST_EXTENSION: "申请延期",
    Action.DECIDE_EXTENSION: "审批延期",
    Action.REPORT_IN: "部门报到",
    Action.REPORT_DONE: "部门办结",
    Action.END_WHISTLE: "结束吹哨",
    Action.NO_RESPONSE: "评价超时(未评价)",
    Action.RECHECK_DUE: "回头看到期",
    Action.REMIND: "时限催办",
    Action.OVERDUE: "超时督办",
    Action.WHISTLE_CLOSED: "吹哨结束",
    Action.SUMMON: "吹哨召集",
    Action.WHISTLE_REMIND: "报到催办",
    Action.WHISTLE_LATE: "报到超时",
}

# Stages in which the action team owns the clock (签收, 整改): where it may ask for more time.
TEAM_STEP_STAGES = frozenset({Stage.ASSIGNED, Stage.RECTIFYING, Stage.ESCALATED})

# Stages in which each action may be taken.
ALLOWED_STAGES: dict[Action, frozenset[Stage]] = {
    Action.ASSIGN: frozenset({Stage.REPORTED, Stage.ASSIGNED}),
    Action.REJECT: frozenset({Stage.REPORTED, Stage.ASSIGNED}),
    Action.ACCEPT: frozenset({Stage.ASSIGNED}),
    Action.RETURN: frozenset({Stage.ASSIGNED}),
    Action.SUBMIT_RECTIFICATION: frozenset({Stage.RECTIFYING}),
    Action.VERIFY: frozenset({Stage.VERIFYING}),
    Action.EVALUATE: frozenset({Stage.EVALUATING}),
    Action.REVIEW: frozenset({Stage.REVIEWING}),
    Action.BRING_RECHECK_FORWARD: frozenset({Stage.RECHECK_PENDING}),
    Action.RECHECK: frozenset({Stage.RECHECKING}),
    Action.SUPPLEMENT: OPEN_STAGES,
    Action.URGE: OPEN_STAGES,
    Action.WHISTLE: frozenset({Stage.RECTIFYING}),
    Action.REQUEST_EXTENSION: TEAM_STEP_STAGES,
    Action.DECIDE_EXTENSION: TEAM_STEP_STAGES,
    Action.REPORT_IN: frozenset({Stage.ESCALATED}),
    Action.REPORT_DONE: frozenset({Stage.ESCALATED}),
    Action.END_WHISTLE: frozenset({Stage.ESCALATED}),
    Action.NO_RESPONSE: frozenset({Stage.EVALUATING}),
    Action.RECHECK_DUE: frozenset({Stage.RECHECK_PENDING}),
    Action.REMIND: OPEN_STAGES,
    Action.OVERDUE: OPEN_STAGES,
    Action.WHISTLE_CLOSED: frozenset({Stage.ESCALATED}),
    Action.SUMMON: frozenset({Stage.ESCALATED}),
    Action.WHISTLE_REMIND: frozenset({Stage.ESCALATED}),
    Action.WHISTLE_LATE: frozenset({Stage.ESCALATED}),
}

# Roles that may take each action. Team and place scope are checked on top of this.
ALLOWED_ROLES: dict[Action, frozenset[Role]] = {
    Action.OPEN: frozenset({Role.HOTLINE, Role.REPORTER, Role.DISPATCHER}),
    Action.ASSIGN: frozenset({Role.DISPATCHER, Role.SUPERVISOR}),
    Action.REJECT: frozenset({Role.DISPATCHER, Role.SUPERVISOR}),
    Action.ACCEPT: frozenset({Role.OFFICER}),
    Action.RETURN: frozenset({Role.OFFICER}),
    Action.SUBMIT_RECTIFICATION: frozenset({Role.OFFICER}),
    Action.VERIFY: frozenset({Role.INSPECTOR}),
    Action.EVALUATE: frozenset({Role.HOTLINE, Role.DISPATCHER}),
    Action.REVIEW: frozenset({Role.COMMUNITY}),
    Action.BRING_RECHECK_FORWARD: frozenset({Role.SUPERVISOR}),
    Action.RECHECK: frozenset({Role.INSPECTOR}),
    Action.SUPPLEMENT: frozenset({Role.HOTLINE, Role.REPORTER, Role.DISPATCHER}),
    Action.URGE: frozenset({Role.SUPERVISOR}),
    # Street/community staff for cases in their area, or the lead team's officer.
    Action.WHISTLE: frozenset({Role.COMMUNITY, Role.OFFICER}),
    Action.REQUEST_EXTENSION: frozenset({Role.OFFICER}),
    Action.DECIDE_EXTENSION: frozenset({Role.SUPERVISOR}),
    # Only departments the whistle summons; checked by the whistle.
    Action.REPORT_IN: frozenset({Role.DEPARTMENT}),
    Action.REPORT_DONE: frozenset({Role.DEPARTMENT}),
    Action.END_WHISTLE: frozenset({Role.SUPERVISOR}),
    Action.NO_RESPONSE: frozenset({Role.SYSTEM}),
    Action.RECHECK_DUE: frozenset({Role.SYSTEM}),
    Action.REMIND: frozenset({Role.SYSTEM}),
    Action.OVERDUE: frozenset({Role.SYSTEM}),
    Action.WHISTLE_CLOSED: frozenset({Role.SYSTEM}),
    Action.SUMMON: frozenset({Role.SYSTEM}),
    Action.WHISTLE_REMIND: frozenset({Role.SYSTEM}),
    Action.WHISTLE_LATE: frozenset({Role.SYSTEM}),
}

# Actions an officer may take only on a case assigned to their own team.
TEAM_SCOPED_ACTIONS = frozenset({Action.ACCEPT, Action.RETURN, Action.SUBMIT_RECTIFICATION,
                                 Action.WHISTLE, Action.REQUEST_EXTENSION})

# Actions taken on a whistle rather than on the case.
WHISTLE_ACTIONS = frozenset({Action.REPORT_IN, Action.REPORT_DONE, Action.END_WHISTLE})

# Actions delivered as fire-and-forget signals: they never change the stage.
SIGNAL_ACTIONS = frozenset({Action.SUPPLEMENT, Action.URGE})


def actions_allowed_in(stage: Stage) -> list[Action]:
    return [a for a, stages in ALLOWED_STAGES.items()
            if stage in stages and Role.SYSTEM not in ALLOWED_ROLES[a]]
