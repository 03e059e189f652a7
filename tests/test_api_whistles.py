"""吹哨报到 and extensions over HTTP with real tokens, on the dev server."""

import asyncio

from tests.api_client import OFFICER, SUPERVISOR, act, get, history, open_case
from tests.factories import bearer

HOUSING = "拉萨市住房和城乡建设局"
POWER = "国网拉萨供电公司"
HOUSING_OFFICER = {"id": "dep-zj-01", "name": "张工", "role": "department", "department": HOUSING}
POWER_OFFICER = {"id": "dep-gd-01", "name": "李工", "role": "department", "department": POWER}
WATER_OFFICER = {"id": "dep-sl-01", "name": "赵工", "role": "department",
                 "department": "拉萨市水利局"}
OTHER_COMMUNITY = {"id": "c099", "name": "达娃", "role": "community", "district": "城关区",
                   "street": "吉日街道"}


async def rectifying_case(api) -> str:
    case_id = (await open_case(api))["case_id"]
    await act(api, case_id, "accept", {}, OFFICER)
    return case_id


async def on_whistle(api, case_id: str, no: int, action: str, body: dict, who: dict,
                     key: str = "", expect: int = 200) -> dict:
    headers = {**bearer(who), **({"Idempotency-Key": key} if key else {})}
    response = await api.post(f"/cases/{case_id}/whistles/{no}/{action}", json=body,
                              headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


async def until_stage(api, case_id: str, stage: str) -> dict:
    for _ in range(100):
        case = (await get(api, f"/cases/{case_id}")).json()
        if case["stage"] == stage:
            return case
        await asyncio.sleep(0.05)
    raise AssertionError(f"case {case_id} never reached {stage}")


async def test_a_whistle_summons_departments_who_report_in_and_finish(api, ledger):
    case_id = await rectifying_case(api)
    blown = await act(api, case_id, "whistle", {
        "kind": "tough", "departments": ["市住建局", POWER],
        "reason": "违建涉及供电线路，需住建、供电部门联合处置"}, OFFICER)
    assert blown["to_stage"] == "escalated"
    whistle = blown["case"]["whistles"][0]
    assert whistle["departments"] == [HOUSING, POWER] and whistle["kind_name"] == "攻坚哨"

    # A summoned department may read the case (personal data masked); others may not.
    seen = await get(api, f"/cases/{case_id}", HOUSING_OFFICER)
    assert seen.status_code == 200 and seen.json()["reporter"]["phone"] == "138****0000"
    assert (await get(api, f"/cases/{case_id}", WATER_OFFICER)).status_code == 403

    reported = await on_whistle(api, case_id, 1, "report_in", {"note": "已到现场"},
                                HOUSING_OFFICER, key="zj-report-in")
    assert reported["whistle"]["summons"][0]["reported_at"] is not None
    again = await on_whistle(api, case_id, 1, "report_in", {"note": "已到现场"},
                             HOUSING_OFFICER, key="zj-report-in")
    assert again["whistle"]["summons"][0]["reported_at"] == \
        reported["whistle"]["summons"][0]["reported_at"]

    refused = await on_whistle(api, case_id, 1, "report_done", {"note": "完成"}, POWER_OFFICER,
                               expect=409)
    assert refused["code"] == "not_reported_in"
    refused = await on_whistle(api, case_id, 1, "report_in", {}, OFFICER, expect=403)
    assert refused["code"] == "role_not_allowed"
    await act(api, case_id, "submit_rectification", {"report": "x"}, OFFICER, expect=409)

    await on_whistle(api, case_id, 1, "report_in", {}, POWER_OFFICER)
    await on_whistle(api, case_id, 1, "report_done", {"note": "已拆除违建"}, HOUSING_OFFICER)
    done = await on_whistle(api, case_id, 1, "report_done",
                            {"note": "已迁改线路", "evidence": ["https://img.example.cn/x.jpg"]},
                            POWER_OFFICER)
    assert done["whistle"]["status"] == "completed"
    case = await until_stage(api, case_id, "rectifying")
    assert case["whistles"][0]["status"] == "completed"
    closed = await on_whistle(api, case_id, 1, "report_in", {}, HOUSING_OFFICER, expect=409)
    assert closed["code"] == "whistle_closed"

    records = (await get(api, f"/cases/{case_id}/whistles")).json()["whistles"]
    assert [s["department"] for s in records[0]["summons"]] == [HOUSING, POWER]
    assert all(s["reported_at"] and s["done_at"] and not s["late"] for s in records[0]["summons"])

    events = await history(api, case_id)
    steps = [(e["action"], e["whistle_no"], e["department"]) for e in events]
    assert steps[2:] == [("whistle", None, None), ("summon", 1, None),
                         ("report_in", 1, HOUSING), ("report_in", 1, POWER),
                         ("report_done", 1, HOUSING), ("report_done", 1, POWER),
                         ("whistle_closed", None, None)]
    assert "第1次吹哨 部门报到" in events[4]["summary"]
    told = {(e.notification.kind, e.notification.recipient)
            for e in ledger.outbox.for_case(case_id)}
    assert {("whistle_summoned", HOUSING), ("whistle_summoned", POWER),
            ("whistle_closed", "环境卫生")} <= told


async def test_whistle_requests_that_make_no_sense_are_refused(api):
    case_id = (await open_case(api))["case_id"]
    body = {"kind": "emergency", "departments": [HOUSING], "reason": "需联合处置"}
    assert (await act(api, case_id, "whistle", body, OFFICER, expect=409))["code"] \
        == "stage_conflict"
    await act(api, case_id, "accept", {}, OFFICER)
    unknown_kind = await act(api, case_id, "whistle", {**body, "kind": "whatever"}, OFFICER,
                             expect=422)
    assert unknown_kind["code"] == "unknown_whistle_kind"
    unknown_dept = await act(api, case_id, "whistle", {**body, "departments": ["市气象局"]},
                             OFFICER, expect=422)
    assert unknown_dept["code"] == "unknown_department"
    outside = await act(api, case_id, "whistle", body, OTHER_COMMUNITY, expect=403)
    assert outside["code"] == "not_your_area"
    assert (await act(api, case_id, "whistle", {**body, "departments": []}, OFFICER,
                      expect=422))["code"] == "invalid_input"
    missing = await on_whistle(api, case_id, 1, "report_in", {}, HOUSING_OFFICER, expect=403)
    assert missing["code"] == "not_your_case"  # not summoned by anything on this case yet
    await act(api, case_id, "whistle", body, OFFICER)
    assert (await on_whistle(api, case_id, 7, "report_in", {}, HOUSING_OFFICER,
                             expect=404))["code"] == "whistle_not_found"
    ended = await on_whistle(api, case_id, 1, "end", {"reason": "转常规整改"}, SUPERVISOR)
    assert ended["whistle"]["status"] == "ended"
    await until_stage(api, case_id, "rectifying")


async def test_an_extension_is_requested_by_the_team_and_decided_by_a_supervisor(api):
    case_id = await rectifying_case(api)
    case = (await get(api, f"/cases/{case_id}")).json()
    due = case["deadlines"]["rectify"]
    assert case["overdue"] is False and case["steps"][-1]["step"] == "rectify"
    bad = await act(api, case_id, "request_extension", {"extend_by": "2 days", "reason": "x"},
                    OFFICER, expect=422)
    assert bad["code"] == "invalid_input"
    asked = await act(api, case_id, "request_extension",
                      {"extend_by": "2wd", "reason": "需等待供电公司停电检修窗口"}, OFFICER)
    assert asked["case"]["extension"]["requested_by"]["id"] == OFFICER["id"]
    assert asked["case"]["deadlines"]["rectify"] == due
    await act(api, case_id, "decide_extension", {"approved": True}, OFFICER, expect=403)
    decided = await act(api, case_id, "decide_extension", {"approved": True, "note": "同意"},
                        SUPERVISOR)
    assert decided["case"]["deadlines"]["rectify"] == asked["case"]["extension"]["requested_due_at"]
    assert decided["case"]["steps"][-1]["extensions"] == 1
    again = await act(api, case_id, "decide_extension", {"approved": False}, SUPERVISOR,
                      expect=409)
    assert again["code"] == "no_extension_pending"
    labels = [e["action_label"] for e in await history(api, case_id)]
    assert labels[-2:] == ["申请延期", "审批延期"]


async def test_a_whistle_terminated_from_outside_returns_the_case_to_rectifying(api, dev_env):
    case_id = await rectifying_case(api)
    body = {"kind": "routine", "departments": [HOUSING], "reason": "需住建部门协助"}
    await act(api, case_id, "whistle", body, OFFICER)
    await dev_env.client.get_workflow_handle(f"{case_id}/whistle-1").terminate(
        reason="operator cleanup")
    case = await until_stage(api, case_id, "rectifying")
    assert case["whistles"][0]["status"] == "ended"
    assert "吹哨流程中止" in (await history(api, case_id))[-1]["note"]
