"""The HTTP API end to end: FastAPI over a real Temporal dev server, worker and SQLite ledger."""

import asyncio
import uuid

import httpx
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest

from api.main import create_app
from api.service import CaseService
from config.settings import Settings
from runtime.worker import build_worker

TASK_QUEUE = "cases-api-tests"
HOTLINE = {"id": "hotline-12345", "name": "12345热线平台", "role": "hotline"}
DISPATCHER = {"id": "d001", "name": "次仁", "role": "dispatcher"}
OFFICER = {"id": "o017", "name": "扎西", "role": "officer", "team": "环境卫生"}
INSPECTOR = {"id": "i003", "name": "卓玛", "role": "inspector"}
SUPERVISOR = {"id": "s001", "name": "督查室", "role": "supervisor"}


@pytest.fixture(scope="module")
async def api(dev_env, ledger, catalog, executor):
    settings = Settings(task_queue=TASK_QUEUE, action_timeout_seconds=10)
    service = CaseService(dev_env.client, ledger, catalog, settings)
    async with build_worker(dev_env.client, TASK_QUEUE, ledger, executor):
        transport = httpx.ASGITransport(app=create_app(settings, service))
        async with httpx.AsyncClient(transport=transport, base_url="http://bihuan") as client:
            yield client


def ticket() -> str:
    return f"2026112{uuid.uuid4().int % 10**9:09d}"


def new_case(**overrides) -> dict:
    body = {"source": "hotline", "external_id": ticket(), "category": "暴露垃圾",
            "description": "吉日巷口垃圾堆积三天无人清运，气味很大", "urgency": "normal",
            "location": {"district": "城关区", "street": "八廓街道", "address": "吉日巷12号旁"},
            "reporter": {"name": "王女士", "phone": "13800000000"}, "actor": HOTLINE}
    body.update(overrides)
    return body


async def open_case(api: httpx.AsyncClient, **overrides) -> dict:
    response = await api.post("/cases", json=new_case(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


async def act(api: httpx.AsyncClient, case_id: str, action: str, body: dict,
              key: str | None = None, expect: int = 200) -> dict:
    headers = {"Idempotency-Key": key or uuid.uuid4().hex}
    response = await api.post(f"/cases/{case_id}/actions/{action}", json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


async def history(api: httpx.AsyncClient, case_id: str) -> list[dict]:
    response = await api.get(f"/cases/{case_id}/history")
    assert response.status_code == 200, response.text
    return response.json()["events"]


async def test_a_case_goes_round_the_whole_loop_over_http(api):
    case = await open_case(api)
    case_id = case["case_id"]
    assert (case["stage"], case["team"], case["stage_label"]) == ("assigned", "环境卫生", "待签收")
    assert "accept" in case["deadlines"] and case["policy"]["category"] == "exposed_garbage"

    steps = [("accept", {"note": "已签收", "actor": OFFICER}, "rectifying"),
             ("submit_rectification", {"report": "已清运垃圾约2吨", "actor": OFFICER,
                                       "evidence": ["https://img.example.cn/after-1.jpg"]},
              "verifying"),
             ("verify", {"passed": True, "note": "现场已清理", "actor": INSPECTOR}, "evaluating"),
             ("evaluate", {"rating": "满意", "comment": "处理及时", "actor": HOTLINE},
              "recheck_pending"),
             ("bring_recheck_forward", {"note": "节前抽查", "actor": SUPERVISOR}, "rechecking"),
             ("recheck", {"result": "consolidated", "note": "未反弹", "actor": INSPECTOR}, "closed")]
    for action, body, to_stage in steps:
        result = await act(api, case_id, action, body)
        assert (result["action"], result["to_stage"]) == (action, to_stage)
        assert result["case"]["stage"] == to_stage

    view = (await api.get(f"/cases/{case_id}")).json()
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

    refused = await act(api, case_id, "urge", {"note": "再催", "actor": SUPERVISOR}, expect=409)
    assert refused["code"] == "case_closed"
    refused = await act(api, case_id, "accept", {"actor": OFFICER}, expect=409)
    assert refused["code"] == "case_closed" and "closed" in refused["message"]


async def test_the_same_hotline_ticket_twice_is_one_case(api, dev_env, ledger):
    body = new_case()
    first = await api.post("/cases", json=body)
    again = await api.post("/cases", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["case_id"] == again.json()["case_id"] == f"hotline-{body['external_id']}"
    assert [e.action.value for e in ledger.history(first.json()["case_id"])] == ["open"]


async def settled_history_length(handle) -> int:
    """The number of history events once no workflow task is in flight."""
    for _ in range(100):
        events = (await handle.fetch_history()).events
        types = [e.event_type for e in events]
        if types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) == \
                types.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED):
            return len(events)
        await asyncio.sleep(0.05)
    raise AssertionError("the workflow never settled")


async def test_a_refused_action_is_409_and_leaves_no_trace(api, dev_env):
    case_id = (await open_case(api))["case_id"]
    handle = dev_env.client.get_workflow_handle(case_id)
    before = await settled_history_length(handle)
    refused = await act(api, case_id, "verify", {"passed": True, "actor": INSPECTOR}, expect=409)
    assert refused["code"] == "stage_conflict"
    assert "assigned" in refused["message"] and "accept" in refused["message"]
    assert refused["details"]["stage"] == "assigned"
    assert "accept" in refused["details"]["allowed"]
    other_team = {**OFFICER, "team": "市政设施"}
    assert (await act(api, case_id, "accept", {"actor": other_team}, expect=403))["code"] \
        == "not_your_team"
    assert await settled_history_length(handle) == before
    assert len(await history(api, case_id)) == 1


async def test_a_retried_request_is_applied_once(api, dev_env, ledger):
    case_id = (await open_case(api))["case_id"]
    first = await act(api, case_id, "accept", {"actor": OFFICER}, key="req-42")
    again = await act(api, case_id, "accept", {"actor": OFFICER}, key="req-42")
    assert again == first
    assert [e.action.value for e in ledger.history(case_id)] == ["open", "accept"]
    reused = await act(api, case_id, "submit_rectification", {"report": "已整改", "actor": OFFICER},
                       key="req-42", expect=422)
    assert reused["code"] == "idempotency_key_reused"


async def test_supplement_and_urge_are_recorded_without_a_stage_change(api):
    case_id = (await open_case(api))["case_id"]
    response = await api.post(f"/cases/{case_id}/actions/supplement",
                              json={"content": "市民补充：旁边还有废弃沙发", "actor": HOTLINE},
                              headers={"Idempotency-Key": "sup-1"})
    assert response.status_code == 202 and response.json()["request_id"] == "sup-1"
    await act(api, case_id, "urge", {"note": "请今日办结", "actor": SUPERVISOR}, expect=202)
    events = []
    for _ in range(50):  # signals are fire-and-forget: wait for the ledger to catch up
        events = await history(api, case_id)
        if len(events) == 3:
            break
    assert [(e["action"], e["to_stage"]) for e in events] == [
        ("open", "assigned"), ("supplement", "assigned"), ("urge", "assigned")]
    assert (await api.get(f"/cases/{case_id}")).json()["supplements"] == 1


async def test_an_unknown_category_waits_for_the_dispatcher(api):
    case = await open_case(api, category="HL-9999 其他问题")
    assert (case["stage"], case["team"], case["category_hint"]) == \
        ("reported", None, "HL-9999 其他问题")
    refused = await act(api, case["case_id"], "assign", {"team": "环境卫生", "actor": DISPATCHER},
                        expect=422)
    assert refused["code"] == "category_required"
    result = await act(api, case["case_id"], "assign",
                       {"team": "环境卫生", "category": "bin_overflow", "actor": DISPATCHER})
    assert result["case"]["stage"] == "assigned"
    assert result["case"]["policy"]["category_name"] == "垃圾桶满溢"


async def test_unknown_cases_are_404(api):
    for path in ("/cases/hotline-nope", "/cases/hotline-nope/history"):
        response = await api.get(path)
        assert response.status_code == 404 and response.json()["code"] == "case_not_found"
    refused = await act(api, "hotline-nope", "accept", {"actor": OFFICER}, expect=404)
    assert refused["code"] == "case_not_found"


@pytest.mark.parametrize("body, field", [
    ({"description": ""}, "description"),
    ({"location": {"district": "城关区"}}, "location.address"),
    ({"source": "fax"}, "source"),
    ({"reporter": {"phone": "call me"}}, "reporter.phone"),
    ({"attachments": ["not a url"]}, "attachments.0"),
])
async def test_malformed_intake_is_422_naming_the_field(api, body, field):
    response = await api.post("/cases", json=new_case(**body))
    assert response.status_code == 422
    error = response.json()
    assert error["code"] == "invalid_input"
    assert field in [e["field"] for e in error["details"]["errors"]]


async def test_bad_action_bodies_and_claims_are_refused(api):
    case_id = (await open_case(api))["case_id"]
    bad_rating = await api.post(f"/cases/{case_id}/actions/evaluate",
                                json={"rating": "还行", "actor": HOTLINE})
    assert bad_rating.status_code == 422 and bad_rating.json()["details"]["errors"][0]["field"] == "rating"
    no_reason = await act(api, case_id, "return", {"reason": "", "actor": OFFICER}, expect=422)
    assert no_reason["details"]["errors"][0]["field"] == "reason"
    no_original = await act(api, case_id, "reject",
                            {"reason": "重复", "duplicate_of": "hotline-none", "actor": DISPATCHER},
                            expect=422)
    assert no_original["code"] == "unknown_case"
    unknown_team = await act(api, case_id, "assign", {"team": "不存在专班", "actor": DISPATCHER},
                             expect=422)
    assert unknown_team["code"] == "unknown_team"
    wrong_role = await act(api, case_id, "accept", {"actor": HOTLINE}, expect=403)
    assert wrong_role["code"] == "role_not_allowed"
    system = await act(api, case_id, "accept", {"actor": {"id": "x", "role": "system"}},
                       expect=403)
    assert system["code"] == "role_not_allowed"
    place = await api.post("/cases", json=new_case(location={"district": "城关区",
                                                             "street": "不存在街道",
                                                             "address": "某处"}))
    assert place.status_code == 422 and place.json()["code"] == "unknown_location"
    assert (await api.get(f"/cases/{case_id}")).json()["stage"] == "assigned"


async def test_the_rectifier_cannot_verify_their_own_work(api):
    case_id = (await open_case(api))["case_id"]
    await act(api, case_id, "accept", {"actor": OFFICER})
    await act(api, case_id, "submit_rectification", {"report": "已整改", "actor": OFFICER})
    refused = await act(api, case_id, "verify",
                        {"passed": True, "actor": {**INSPECTOR, "id": OFFICER["id"]}}, expect=403)
    assert refused["code"] == "self_verification"


async def test_history_outlives_the_workflow(api, dev_env):
    body = new_case()
    case_id = (await api.post("/cases", json=body)).json()["case_id"]
    await act(api, case_id, "reject", {"reason": "无效诉求", "actor": DISPATCHER})
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
    assert (await api.get(f"/cases/{case_id}")).json()["stage"] == "invalid"
    redelivered = await api.post("/cases", json=body)
    assert redelivered.status_code == 200 and redelivered.json()["case_id"] == case_id
    refused = await act(api, case_id, "assign", {"team": "环境卫生", "actor": DISPATCHER},
                        expect=409)
    assert refused["code"] == "case_closed"


async def test_openapi_documents_every_action_with_chinese_examples(api):
    spec = (await api.get("/openapi.json")).json()
    actions = [p for p in spec["paths"] if "/actions/" in p]
    assert len(actions) == 12
    accept = spec["paths"]["/cases/{case_id}/actions/accept"]["post"]
    assert "签收" in accept["summary"]
    assert {"403", "404", "409", "422"} <= set(accept["responses"])
    example = spec["components"]["schemas"]["OpenCaseRequest"]["examples"][0]
    example["external_id"] = ticket()
    assert (await api.post("/cases", json=example)).status_code == 201
    for path, item in spec["paths"].items():
        if "/actions/" in path:
            body = item["post"]["requestBody"]["content"]["application/json"]
            assert body["examples"]["example"]["value"]["actor"]["role"]
