"""Every path of the case lifecycle on the time-skipping Temporal test server, with the ledger
written for real to SQLite."""

import asyncio
from datetime import timedelta

from temporalio.client import WorkflowHandle

from domain.stages import Stage
from tests.factories import (COMMUNITY, DISPATCHER, HOTLINE, INSPECTOR, MUNICIPAL_OFFICER,
                             OFFICER, OTHER_OFFICER, SUPERVISOR, cmd, policy)
from tests.workflow_steps import act, rectify, refused, stage, to_recheck_pending, worker_fixtures
from workflows.case import CaseWorkflow

TASK_QUEUE = "cases-workflow-tests"


started, start = worker_fixtures(TASK_QUEUE)


async def test_ordinary_case_closes_after_the_recheck_interval(start, time_env, ledger, catalog):
    handle = await start()
    assert await stage(handle) == Stage.ASSIGNED  # a known category routes itself
    await to_recheck_pending(handle)
    state = await handle.query(CaseWorkflow.state)
    assert state.stage == Stage.RECHECK_PENDING
    interval = catalog.category("exposed_garbage").recheck_interval_days
    assert state.recheck_due_at - state.stage_times[Stage.RECHECK_PENDING] == timedelta(days=interval)

    await time_env.sleep(timedelta(days=interval) - timedelta(hours=1))
    assert await stage(handle) == Stage.RECHECK_PENDING
    await time_env.sleep(timedelta(hours=2))
    assert await stage(handle) == Stage.RECHECKING

    result = await act(handle, "recheck", INSPECTOR, result="consolidated", note="未反弹")
    assert result.to_stage == Stage.CLOSED
    final = await handle.result()
    assert final.stage == Stage.CLOSED and final.round == 1 and final.rebounds == 0

    events = ledger.history(handle.id)
    assert [e.action.value for e in events] == [
        "open", "accept", "submit_rectification", "verify", "evaluate", "recheck_due", "recheck"]
    assert [e.to_stage for e in events][-1] == Stage.CLOSED
    assert [e.seq for e in events] == list(range(1, 8))
    row = ledger.case(handle.id)
    assert row.stage == Stage.CLOSED and row.rating.value == "satisfied"
    assert set(row.stage_times) >= {Stage.ASSIGNED, Stage.RECTIFYING, Stage.VERIFYING,
                                    Stage.EVALUATING, Stage.RECHECK_PENDING, Stage.RECHECKING,
                                    Stage.CLOSED}


async def test_failed_verification_sends_the_case_back_for_another_round(start, ledger):
    handle = await start()
    await act(handle, "accept", OFFICER)
    await rectify(handle)
    result = await act(handle, "verify", INSPECTOR, passed=False, note="仍有垃圾残留")
    assert result.to_stage == Stage.RECTIFYING and result.state.round == 2
    assert result.state.rectified_by is None
    await rectify(handle, OTHER_OFFICER)
    result = await act(handle, "verify", INSPECTOR, passed=True)
    assert result.to_stage == Stage.EVALUATING and result.state.round == 2
    assert [e.round for e in ledger.history(handle.id)] == [1, 1, 1, 2, 2, 2]


async def test_returned_case_is_redispatched_to_another_team(start, catalog):
    handle = await start()
    result = await act(handle, "return", OFFICER, reason="该井盖属于市政设施专班管辖")
    assert result.to_stage == Stage.REPORTED and result.state.team is None
    assert result.state.returns == 1
    # Returned, the case is no team's: the officer may not even read it any more.
    assert (await refused(handle, "accept", OFFICER)).type == "not_your_team"
    assert (await refused(handle, "accept", DISPATCHER)).type == "role_not_allowed"
    result = await act(handle, "assign", DISPATCHER, team="市政设施",
                       policy=policy(catalog, "manhole_cover"), note="改派市政设施专班")
    assert result.to_stage == Stage.ASSIGNED and result.state.team == "市政设施"
    assert result.state.policy.category == "manhole_cover"
    assert (await refused(handle, "accept", OFFICER)).type == "not_your_team"
    result = await act(handle, "accept", MUNICIPAL_OFFICER)
    assert result.to_stage == Stage.RECTIFYING


async def test_unknown_category_waits_for_the_dispatcher(start, catalog):
    handle = await start(category=None, category_hint="其他-未分类")
    state = await handle.query(CaseWorkflow.state)
    assert state.stage == Stage.REPORTED and state.team is None
    assert state.category_hint == "其他-未分类"
    assert (await refused(handle, "assign", DISPATCHER, team="环境卫生")).type == "category_required"
    result = await act(handle, "assign", DISPATCHER, team="环境卫生",
                       policy=policy(catalog, "exposed_garbage"))
    assert result.to_stage == Stage.ASSIGNED and "accept" in result.state.deadlines


async def test_dispatcher_rejects_a_duplicate_and_the_case_ends(start):
    original = await start()
    handle = await start()
    result = await act(handle, "reject", DISPATCHER, reason="重复上报", duplicate_of=original.id)
    assert result.to_stage == Stage.INVALID
    final = await handle.result()
    assert final.stage == Stage.INVALID and final.duplicate_of == original.id
    refusal = await refused(original, "reject", DISPATCHER, reason="重复", duplicate_of=original.id)
    assert refusal.type == "invalid_duplicate"


async def test_unsatisfied_rating_upheld_by_community_review(start):
    handle = await start()
    await act(handle, "accept", OFFICER)
    await rectify(handle)
    await act(handle, "verify", INSPECTOR, passed=True)
    result = await act(handle, "evaluate", HOTLINE, rating="不满意", comment="还有异味")
    assert result.to_stage == Stage.REVIEWING and result.state.rating.value == "unsatisfied"
    assert "review" in result.state.deadlines
    result = await act(handle, "review", COMMUNITY, decision="uphold", note="已消杀，异味来自周边餐馆")
    assert result.to_stage == Stage.RECHECK_PENDING and result.state.round == 1


async def rated(handle: WorkflowHandle, rating: str) -> None:
    await act(handle, "accept", OFFICER)
    await rectify(handle)
    await act(handle, "verify", INSPECTOR, passed=True)
    await act(handle, "evaluate", HOTLINE, rating=rating)


async def test_unsatisfied_rating_reopened_by_community_review(start):
    handle = await start()
    await rated(handle, "very_unsatisfied")
    result = await act(handle, "review", COMMUNITY, decision="reopen", note="现场核实仍有垃圾")
    assert result.to_stage == Stage.RECTIFYING and result.state.round == 2
    assert result.state.rating is None


async def test_30_day_recheck_rebounds_and_a_second_round_closes(start, time_env, ledger):
    handle = await start(category="street_light_out")
    officer = MUNICIPAL_OFFICER

    async def one_round() -> None:
        await rectify(handle, officer)
        await act(handle, "verify", INSPECTOR, passed=True)
        await act(handle, "evaluate", HOTLINE, rating="非常满意")
        assert await stage(handle) == Stage.RECHECK_PENDING
        await time_env.sleep(timedelta(days=30, minutes=1))
        assert await stage(handle) == Stage.RECHECKING

    await act(handle, "accept", officer)
    await one_round()
    result = await act(handle, "recheck", INSPECTOR, result="rebounded", note="路灯再次不亮")
    assert result.to_stage == Stage.RECTIFYING
    assert (result.state.round, result.state.rebounds) == (2, 1)

    await one_round()
    result = await act(handle, "recheck", INSPECTOR, result="consolidated")
    assert result.to_stage == Stage.CLOSED
    final = await handle.result()
    assert (final.stage, final.round, final.rebounds) == (Stage.CLOSED, 2, 1)
    assert [e.action.value for e in ledger.history(handle.id)].count("recheck_due") == 2


async def test_supervisor_brings_the_recheck_forward(start):
    handle = await start()
    await to_recheck_pending(handle)
    assert (await refused(handle, "bring_recheck_forward", INSPECTOR)).type == "role_not_allowed"
    result = await act(handle, "bring_recheck_forward", SUPERVISOR, note="节前抽查")
    assert result.to_stage == Stage.RECHECKING
    result = await act(handle, "recheck", INSPECTOR, result="consolidated")
    assert result.to_stage == Stage.CLOSED


async def test_no_rating_within_the_window_is_recorded_as_no_response(start, time_env, catalog):
    handle = await start()
    await act(handle, "accept", OFFICER)
    await rectify(handle)
    await act(handle, "verify", INSPECTOR, passed=True)
    await time_env.sleep(timedelta(days=catalog.evaluation_window_days, minutes=1))
    state = await handle.query(CaseWorkflow.state)
    assert state.stage == Stage.RECHECK_PENDING
    assert state.evaluation == "no_response" and state.rating is None


def accepted_updates(history) -> int:
    return sum(e.HasField("workflow_execution_update_accepted_event_attributes")
               for e in history.events)


async def test_refused_actions_change_nothing(start, ledger):
    # That a refusal adds no history event at all is checked on the dev server (test_api.py);
    # the time-skipping server records an empty workflow task for each rejected update.
    handle = await start()
    assert await stage(handle) == Stage.ASSIGNED
    cases = [("submit_rectification", OFFICER, {"report": "已整改"}, "stage_conflict"),
             ("accept", INSPECTOR, {}, "role_not_allowed"),
             ("accept", MUNICIPAL_OFFICER, {}, "not_your_team"),
             ("verify", INSPECTOR, {"passed": True}, "stage_conflict")]
    for kind, actor, fields, code in cases:
        refusal = await refused(handle, kind, actor, **fields)
        assert refusal.type == code
        assert refusal.details[0]["code"] == code
    conflict = await refused(handle, "verify", INSPECTOR, passed=True)
    assert "assigned" in conflict.message and "accept" in conflict.details[0]["allowed"]
    assert accepted_updates(await handle.fetch_history()) == 0
    assert await stage(handle) == Stage.ASSIGNED
    assert [e.action.value for e in ledger.history(handle.id)] == ["open"]


async def test_the_rectifier_may_not_verify_their_own_work(start):
    handle = await start()
    await act(handle, "accept", OFFICER)
    await rectify(handle)
    same_person = INSPECTOR.model_copy(update={"id": OFFICER.id})
    refusal = await refused(handle, "verify", same_person, passed=True)
    assert refusal.type == "self_verification"
    assert (await act(handle, "verify", INSPECTOR, passed=True)).to_stage == Stage.EVALUATING


async def test_a_repeated_request_id_is_applied_once(start, ledger):
    handle = await start()
    first = await act(handle, "accept", OFFICER, request_id="req-accept-1")
    again = await act(handle, "accept", OFFICER, request_id="req-accept-1")
    assert again == first
    assert accepted_updates(await handle.fetch_history()) == 1
    assert [e.action.value for e in ledger.history(handle.id)] == ["open", "accept"]


async def test_supplements_and_urging_are_recorded_without_changing_the_stage(start, ledger):
    handle = await start()
    supplement = cmd("supplement", HOTLINE, "sup-1", content="市民补充：旁边还有废弃沙发")
    await handle.signal(CaseWorkflow.note, supplement)
    await handle.signal(CaseWorkflow.note, supplement)  # redelivered: recorded once
    await handle.signal(CaseWorkflow.note, cmd("urge", SUPERVISOR, note="请今日办结"))
    state = await handle.query(CaseWorkflow.state)
    assert state.stage == Stage.ASSIGNED and (state.supplements, state.urges) == (1, 1)
    # Signals are fire-and-forget: the query can answer before their ledger writes finish.
    for _ in range(100):
        if len(ledger.history(handle.id)) >= 3:
            break
        await asyncio.sleep(0.05)
    actions = [(e.action.value, e.from_stage, e.to_stage) for e in ledger.history(handle.id)]
    assert actions[1:] == [("supplement", Stage.ASSIGNED, Stage.ASSIGNED),
                           ("urge", Stage.ASSIGNED, Stage.ASSIGNED)]


async def test_community_staff_outside_the_case_area_cannot_review(start):
    handle = await start()
    await rated(handle, "不满意")
    elsewhere = COMMUNITY.model_copy(update={"district": "达孜区", "street": None})
    refusal = await refused(handle, "review", elsewhere, decision="uphold", note="复核")
    assert refusal.type == "not_your_area"
    assert await stage(handle) == Stage.REVIEWING
