"""The dashboard's Chinese wording: role names, the definition shown on hover for each figure,
and what to tell a person when the API refuses them."""

from api.routes.stats import COUNTS, RATES, WHISTLE_COUNTS
from domain.calendar import parse_limit
from domain.models import RATING_LABELS, Rating
from domain.roles import Role

ROLE_LABELS = {
    Role.HOTLINE: "12345热线", Role.REPORTER: "上报人", Role.DISPATCHER: "派单员",
    Role.OFFICER: "专班人员", Role.DEPARTMENT: "职能部门", Role.COMMUNITY: "街道/社区",
    Role.INSPECTOR: "监督员", Role.SUPERVISOR: "督办", Role.ADMIN: "管理员", Role.SYSTEM: "系统",
}



def _labelled(table: dict, hints: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The label /stats documents for each figure, with the Chinese definition shown on hover."""
    return {name: (table[name][0], hint) for name, hint in hints.items()}


# name in /stats: (label, definition shown on hover)
COUNT_HINTS = {
    **_labelled(COUNTS, {"found": "本期立案的案件数（含作废）",
                         "open": "本期立案、目前既未办结也未作废的案件数"}),
    "overdue": ("超时数", "本期立案、当前等待的环节已超过时限的案件数"),
    **_labelled(COUNTS, {"closed": "本期立案、目前已办结（回头看巩固）的案件数"}),
    "rebounded": ("反弹数", "本期立案、回头看至少发现一次问题反弹的案件数"),
}
RATE_HINTS = {
    # The overview shows 签收 as the 三率's 响应率.
    "accepted_on_time_rate": ("响应率（及时签收率）",
                              "按时签收的签收环节 ÷ 以签收结束的全部签收环节；改派、退单、作废结束的不计"),
    **_labelled(RATES, {
        "resolved_rate": "首次现场核查即通过的案件 ÷ 至少核查过一次的案件",
        "satisfaction_rate": "非常满意、满意、基本满意的评价 ÷ 已评价案件",
        "rectified_on_time_rate": "按时提交整改的整改环节 ÷ 以提交整改结束的全部整改环节（每轮一次）；"
                                  "经批准的延期算作约定时限",
        "rebound_rate": "回头看发现问题反弹的次数 ÷ 已开展的回头看次数"}),
}
WHISTLE_HINTS = {
    **_labelled(WHISTLE_COUNTS, {
        "summoned": "本期被召集的次数", "reported_on_time": "在时限内报到且未被标记迟到",
        "reported_late": "超过时限报到，或先被标记迟到", "not_reported": "尚未报到（无论是否已过时限）",
        "parts_done": "已报告本部门任务完成"}),
    "avg_minutes_to_report_in": ("平均报到用时", "从召集到报到的平均分钟数，只计已报到的"),
}

REFUSALS = {
    "role_not_allowed": "您的角色无权进行此操作或查看此内容。",
    "not_your_team": "该案件不属于您所在的专班。",
    "not_your_area": "该案件不在您负责的区域内。",
    "not_your_case": "该案件不是您上报的。",
    "case_not_found": "没有这个案件。",
    "case_closed": "案件已办结或作废，不能再督办。",
    "invalid_input": "输入有误，请检查筛选条件。",
    "csrf_refused": "此操作只能在督办看板页面内发起。",
    "temporal_unavailable": "案件引擎暂时没有响应，请稍后再试。",
    "action_pending": "案件引擎未及时响应，请稍后刷新查看是否已记录。",
    "idempotency_key_reused": "这次操作与之前的请求编号冲突，请刷新页面后重试。",
}
SIGN_IN_REASONS = {
    "token_expired": "登录已过期，请重新输入令牌。",
    "invalid_signature": "令牌签名无效。",
    "malformed_token": "这不是有效的令牌（JWT）。",
    "unsigned_token": "不接受未签名的令牌。",
    "invalid_claims": "令牌中的身份信息不完整或无效。",
    "invalid_token": "令牌无效。",
    "missing_token": "请输入令牌。",
}


def refusal_text(code: str) -> str:
    return REFUSALS.get(code, f"请求被拒绝（{code}）。")


def sign_in_text(code: str | None) -> str | None:
    if code is None:
        return None
    return SIGN_IN_REASONS.get(code, "令牌无效，请重新登录。")

# The case list's filter boxes, as the form labels them.
FILTER_LABELS = {
    "q": "关键词", "team": "专班", "category": "问题类别", "source": "来源", "urgency": "紧急程度",
    "district": "区县", "street": "街道", "community": "社区", "overdue": "当前超时",
    "overdue_step": "曾超时环节", "rebounded": "反弹过", "whistled": "吹过哨", "stage": "阶段",
    "created_from": "立案日期从", "created_to": "立案日期到", "closed_from": "办结日期从",
    "closed_to": "办结日期到", "sort": "排序", "order": "顺序", "limit": "每页条数",
    "cursor": "翻页位置",
}


def filter_names(err) -> str:
    """The fields a pydantic ValidationError names, as the form labels them."""
    names = dict.fromkeys(str(e["loc"][0]) if e["loc"] else "?" for e in err.errors())
    return "、".join(FILTER_LABELS.get(name, name) for name in names)


def outcome_text(action: str, payload: dict) -> str | None:
    """What an action decided, from its payload: the rating given, the verification's result."""
    match action:
        case "evaluate" if payload.get("rating") in set(Rating):
            return f"评价：{RATING_LABELS[Rating(payload['rating'])]}"
        case "verify" if "passed" in payload:
            return "核查通过" if payload["passed"] else "核查未通过"
        case "recheck" if payload.get("result"):
            return {"consolidated": "已巩固", "rebounded": "问题反弹"}.get(payload["result"])
        case "review" if payload.get("decision"):
            return {"uphold": "维持办理结果", "reopen": "重新整改"}.get(payload["decision"])
        case "decide_extension" if "approved" in payload:
            return "同意延期" if payload["approved"] else "不同意延期"
        case "request_extension" if payload.get("extend_by"):
            return f"申请延期 {payload['extend_by']}"
        case "assign" if payload.get("team"):
            return f"派至{payload['team']}"
    return None


LIMIT_UNITS = {"m": "分钟", "h": "小时", "d": "天", "wh": "个工作小时", "wd": "个工作日"}


def limit_text(limit: str) -> str:
    """A time limit as written in the configuration ("4wh") in words ("4个工作小时")."""
    try:
        amount, unit = parse_limit(limit)
    except ValueError:
        return limit
    return f"{amount}{LIMIT_UNITS.get(unit, unit)}"
