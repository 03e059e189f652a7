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
    # Done by timers, never by a request.
    NO_RESPONSE = "no_response"
    RECHECK_DUE = "recheck_due"


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
    Action.NO_RESPONSE: "评价超时(未评价)",
    Action.RECHECK_DUE: "回头看到期",
}

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
    Action.NO_RESPONSE: frozenset({Stage.EVALUATING}),
    Action.RECHECK_DUE: frozenset({Stage.RECHECK_PENDING}),
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
    Action.NO_RESPONSE: frozenset({Role.SYSTEM}),
    Action.RECHECK_DUE: frozenset({Role.SYSTEM}),
}

# Actions an officer may take only on a case assigned to their own team.
TEAM_SCOPED_ACTIONS = frozenset({Action.ACCEPT, Action.RETURN, Action.SUBMIT_RECTIFICATION})

# Actions delivered as fire-and-forget signals: they never change the stage.
SIGNAL_ACTIONS = frozenset({Action.SUPPLEMENT, Action.URGE})


def actions_allowed_in(stage: Stage) -> list[Action]:
    return [a for a, stages in ALLOWED_STAGES.items()
            if stage in stages and Role.SYSTEM not in ALLOWED_ROLES[a]]
