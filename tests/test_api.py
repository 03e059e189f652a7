"""The HTTP API end to end: FastAPI over a real Temporal dev server, worker and SQLite ledger."""

import uuid

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest

from config.settings import Settings
from domain.actions import ALLOWED_ROLES, WHISTLE_ACTIONS, Action
from domain.roles import Role
from runtime.worker import build_worker
from tests.api_client import (DISPATCHER, HOTLINE, INSPECTOR, OFFICER, SUPERVISOR, act, bearer,
                              get, history, in_process, new_case, open_case, post_case, ticket)
from tests.workflow_steps import settled


async def test_a_case_goes_round_the_whole_loop_over_http(api):
    case = await open_case(api)
    case_id = case["case_id"]
    assert (case["stage"], case["team"], case["stage_label"]) == ("assigned", "环境卫生", "待签收")
    assert "accept" in case["deadlines"] and case["policy"]["category"] == "exposed_garbage"

    steps = [("accept", {"note": "已签收"}, OFFICER, "rectifying"),
             ("submit_rectification", {"report": "已清运垃圾约2吨",
                                       "evidence": ["https://img.example.cn/after-1.jpg"]},
              OFFICER, "verifying"),
             ("verify", {"passed": True, "note": "现场已清理"}, INSPECTOR, "evaluating"),
             ("evaluate", {"rating": "满意", "comment": "处理及时"}, HOTLINE,
              "recheck_pending"),
             ("bring_recheck_forward", {"note": "节前抽查"}, SUPERVISOR, "rechecking"),
             ("recheck", {"result": "consolidated", "note": "未反弹"}, INSPECTOR, "closed")]
    for action, body, who, to_stage in steps:
        result = await act(api, case_id, action, body, who)
        assert (result["action"], result["to_stage"]) == (action, to_stage)
        assert result["case"]["stage"] == to_stage

    view = (await get(api, f"/cases/{case_id}")).json()
    assert view["stage"] == "closed" and view["rating"] == "satisfied"
    assert set(view["stage_times"]) == {"reported", "assigned", "rectifying", "verifying",
                                        "evaluating", "recheck_pending", "rechecking", "closed"}
    events = await history(api, case_id)
    assert [e["action"] for e in events] == ["open"] + [s[0] for s in steps]
    assert [e["seq"] for e in events] == list(range(1, 8))
    accept = events[1]
    assert (accept["from_stage"], accept["to_stage"]) == ("assigned", "rectifying")
    assert accept["actor"]["id"] == "o017" and accept["actor"]["team"] == "环境卫生"
    assert "扎西" in accept["summary"] and "签收" in accept["summary"]
    assert events[2]["evidence"] == ["https://img.example.cn/after-1.jpg"]

    refused = await act(api, case_id, "urge", {"note": "再催"}, who=SUPERVISOR, expect=409)
    assert refused["code"] == "case_closed"
    refused = await act(api, case_id, "accept", {}, who=OFFICER, expect=409)
    assert refused["code"] == "case_closed" and "closed" in refused["message"]


async def test_the_same_hotline_ticket_twice_is_one_case(api, dev_env, ledger):
    body = new_case()
    first = await post_case(api, body)
    again = await post_case(api, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["case_id"] == again.json()["case_id"] == f"hotline-{body['external_id']}"
    assert [e.action.value for e in ledger.history(first.json()["case_id"])] == ["open"]


async def test_a_refused_action_is_409_and_leaves_no_trace(api, dev_env):
    case_id = (await open_case(api))["case_id"]
    handle = dev_env.client.get_workflow_handle(case_id)
    before = len((await settled(handle)).events)
    refused = await act(api, case_id, "verify", {"passed": True}, who=INSPECTOR, expect=409)
    assert refused["code"] == "stage_conflict"
    assert "assigned" in refused["message"] and "accept" in refused["message"]
    assert refused["details"]["stage"] == "assigned"
    assert "accept" in refused["details"]["allowed"]
    other_team = {**OFFICER, "team": "市政设施"}
    assert (await act(api, case_id, "accept", {}, who=other_team, expect=403))["code"] \
        == "not_your_team"
    assert len((await settled(handle)).events) == before
    assert len(await history(api, case_id)) == 1


async def test_a_retried_request_is_applied_once(api, dev_env, ledger):
    case_id = (await open_case(api))["case_id"]
    first = await act(api, case_id, "accept", {}, who=OFFICER, key="req-42")
    again = await act(api, case_id, "accept", {}, who=OFFICER, key="req-42")
    assert again == first
    assert [e.action.value for e in ledger.history(case_id)] == ["open", "accept"]
    reused = await act(api, case_id, "submit_rectification", {"report": "已整改"}, who=OFFICER,
                       key="req-42", expect=422)
    assert reused["code"] == "idempotency_key_reused"


async def test_supplement_and_urge_are_recorded_without_a_stage_change(api):
    case_id = (await open_case(api))["case_id"]
    response = await api.post(f"/cases/{case_id}/actions/supplement",
                              json={"content": "市民补充：旁边还有废弃沙发"},
                              headers={"Idempotency-Key": "sup-1", **bearer(HOTLINE)})
    assert response.status_code == 202 and response.json()["request_id"] == "sup-1"
    await act(api, case_id, "urge", {"note": "请今日办结"}, who=SUPERVISOR, expect=202)
    events = []
    for _ in range(50):  # signals are fire-and-forget: wait for the ledger to catch up
        events = await history(api, case_id)
        if len(events) == 3:
            break
    assert [(e["action"], e["to_stage"]) for e in events] == [
        ("open", "assigned"), ("supplement", "assigned"), ("urge", "assigned")]
    assert (await get(api, f"/cases/{case_id}")).json()["supplements"] == 1


async def test_an_unknown_category_waits_for_the_dispatcher(api):
    case = await open_case(api, category="HL-9999 其他问题")
    assert (case["stage"], case["team"], case["category_hint"]) == \
        ("reported", None, "HL-9999 其他问题")
    refused = await act(api, case["case_id"], "assign", {"team": "环境卫生"}, who=DISPATCHER,
                        expect=422)
    assert refused["code"] == "category_required"
    result = await act(api, case["case_id"], "assign",
                       {"team": "环境卫生", "category": "bin_overflow"}, who=DISPATCHER)
    assert result["case"]["stage"] == "assigned"
    assert result["case"]["policy"]["category_name"] == "垃圾桶满溢"


async def test_unknown_cases_are_404(api):
    for path in ("/cases/hotline-nope", "/cases/hotline-nope/history"):
        response = await get(api, path)
        assert response.status_code == 404 and response.json()["code"] == "case_not_found"
    refused = await act(api, "hotline-nope", "accept", {}, who=OFFICER, expect=404)
    assert refused["code"] == "case_not_found"


@pytest.mark.parametrize("body, field", [
    ({"description": ""}, "description"),
    ({"location": {"district": "城关区"}}, "location.address"),
    ({"source": "fax"}, "source"),
    ({"reporter": {"phone": "call me"}}, "reporter.phone"),
    ({"attachments": ["not a url"]}, "attachments.0"),
])
async def test_malformed_intake_is_422_naming_the_field(api, body, field):
    response = await post_case(api, new_case(**body))
    assert response.status_code == 422
    error = response.json()
    assert error["code"] == "invalid_input"
    assert field in [e["field"] for e in error["details"]["errors"]]


async def test_bad_action_bodies_and_claims_are_refused(api):
    case_id = (await open_case(api))["case_id"]
    bad_rating = await api.post(f"/cases/{case_id}/actions/evaluate", json={"rating": "还行"},
                                headers=bearer(HOTLINE))
    assert bad_rating.status_code == 422 and bad_rating.json()["details"]["errors"][0]["field"] == "rating"
    no_reason = await act(api, case_id, "return", {"reason": ""}, who=OFFICER, expect=422)
    assert no_reason["details"]["errors"][0]["field"] == "reason"
    no_original = await act(api, case_id, "reject",
                            {"reason": "重复", "duplicate_of": "hotline-none"}, who=DISPATCHER,
                            expect=422)
    assert no_original["code"] == "unknown_case"
    unknown_team = await act(api, case_id, "assign", {"team": "不存在专班"}, who=DISPATCHER,
                             expect=422)
    assert unknown_team["code"] == "unknown_team"
    wrong_role = await act(api, case_id, "accept", {}, who=HOTLINE, expect=403)
    assert wrong_role["code"] == "role_not_allowed"
    in_body = await act(api, case_id, "accept", {"actor": OFFICER}, who=OFFICER, expect=422)
    assert in_body["details"]["errors"][0]["field"] == "actor"  # the actor comes from the token
    place = await post_case(api, new_case(location={"district": "城关区",
                                                             "street": "不存在街道",
                                                             "address": "某处"}))
    assert place.status_code == 422 and place.json()["code"] == "unknown_location"
    assert (await get(api, f"/cases/{case_id}")).json()["stage"] == "assigned"


async def test_the_rectifier_cannot_verify_their_own_work(api):
    case_id = (await open_case(api))["case_id"]
    await act(api, case_id, "accept", {}, who=OFFICER)
    await act(api, case_id, "submit_rectification", {"report": "已整改"}, who=OFFICER)
    refused = await act(api, case_id, "verify",
                        {"passed": True}, who={**INSPECTOR, "id": OFFICER["id"]}, expect=403)
    assert refused["code"] == "self_verification"


async def test_history_outlives_the_workflow(api, dev_env):
    body = new_case()
    case_id = (await post_case(api, body)).json()["case_id"]
    await act(api, case_id, "reject", {"reason": "无效诉求"}, who=DISPATCHER)
    await dev_env.client.get_workflow_handle(case_id).result()
    # What retention does after a year: the closed workflow is gone from Temporal.
    await dev_env.client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(namespace=dev_env.client.namespace,
                                       workflow_execution=WorkflowExecution(workflow_id=case_id)))
    for _ in range(100):
        try:
            await dev_env.client.get_workflow_handle(case_id).describe()
        except Exception:
            break
    events = await history(api, case_id)
    assert [e["action"] for e in events] == ["open", "reject"]
    assert (await get(api, f"/cases/{case_id}")).json()["stage"] == "invalid"
    redelivered = await post_case(api, body)
    assert redelivered.status_code == 200 and redelivered.json()["case_id"] == case_id
    refused = await act(api, case_id, "assign", {"team": "环境卫生"}, who=DISPATCHER,
                        expect=409)
    assert refused["code"] == "case_closed"


async def test_openapi_documents_every_action_with_chinese_examples(api):
    spec = (await api.get("/openapi.json")).json()
    actions = {p.rsplit("/", 1)[1] for p in spec["paths"] if "/actions/" in p}
    assert actions == {a.value for a in Action if a not in WHISTLE_ACTIONS
                       and Role.SYSTEM not in ALLOWED_ROLES[a]} - {"open"}
    whistle_paths = {p for p in spec["paths"] if "/whistles/{whistle_no}/" in p}
    assert {p.rsplit("/", 1)[1] for p in whistle_paths} == {"report_in", "report_done", "end"}
    accept = spec["paths"]["/cases/{case_id}/actions/accept"]["post"]
    assert "签收" in accept["summary"]
    assert {"403", "404", "409", "422"} <= set(accept["responses"])
    example = spec["components"]["schemas"]["OpenCaseRequest"]["examples"][0]
    example["external_id"] = ticket()
    assert (await post_case(api, example)).status_code == 201
    for path, item in spec["paths"].items():
        if "/actions/" in path:
            body = item["post"]["requestBody"]["content"]["application/json"]
            assert body["examples"]["example"]["value"]
            assert "Roles:" in item["post"]["description"]


async def test_an_action_not_answered_in_time_is_pending_and_applied_once_when_repeated(
        dev_env, ledger, catalog, executor):
    # No worker polls this task queue at first: the case cannot answer the action.
    settings = Settings(task_queue=f"api-pending-{uuid.uuid4().hex[:8]}",
                        action_timeout_seconds=1)
    async with in_process(dev_env.client, ledger, catalog, settings) as api:
        case_id = (await open_case(api))["case_id"]
        pending = await act(api, case_id, "accept", {"note": "已签收"}, OFFICER, key="acc-1",
                            expect=504)
        assert pending["code"] == "action_pending"
        assert pending["details"]["request_id"] == "acc-1"
        assert "Idempotency-Key" in pending["message"]
        async with build_worker(dev_env.client, settings.task_queue, ledger, executor):
            again = await act(api, case_id, "accept", {"note": "已签收"}, OFFICER, key="acc-1")
            repeated = await act(api, case_id, "accept", {"note": "已签收"}, OFFICER,
                                 key="acc-1")
        assert again["to_stage"] == repeated["to_stage"] == "rectifying"
        assert again["seq"] == repeated["seq"] == 2
    assert [e.action.value for e in ledger.history(case_id)] == ["open", "accept"]
