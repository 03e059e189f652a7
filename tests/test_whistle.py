"""吹哨报到 on the time-skipping server: summoned departments report in, are marked late and
reminded again when they do not, report their parts done; supervisors end whistles; a case
may be whistled more than once. The ledger and its outbox are written for real."""

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.models import Actor
from domain.roles import Role
from domain.stages import Stage
from domain.whistles import WhistleCommand, whistle_workflow_id
from tests.factories import COMMUNITY, MUNICIPAL_OFFICER, OFFICER, SUPERVISOR
from tests.workflow_steps import act, rectify, refused, sent_to, worker_fixtures
from workflows.case import CaseWorkflow
from workflows.whistle import WhistleWorkflow

TASK_QUEUE = "whistle-tests"
HOUSING = "拉萨市住房和城乡建设局"
POWER = "国网拉萨供电公司"
HOUSING_OFFICER = Actor(id="dep-zj-01", name="张工", role=Role.DEPARTMENT, department=HOUSING)
POWER_OFFICER = Actor(id="dep-gd-01", name="李工", role=Role.DEPARTMENT, department=POWER)
WATER_OFFICER = Actor(id="dep-water-01", name="赵工", role=Role.DEPARTMENT,
                      department="拉萨市自来水公司")


@pytest.fixture(scope="module")
def time_env(own_time_env):
    return own_time_env  # child workflows: see own_time_env


started, start = worker_fixtures(TASK_QUEUE)


async def rectifying(start) -> WorkflowHandle:
    handle = await start("exposed_garbage")
    await act(handle, "accept", OFFICER)
    return handle


async def blow(handle: WorkflowHandle, actor=OFFICER, kind="emergency", limit="30m",
               departments=(HOUSING, POWER)):
    return await act(handle, "whistle", actor, whistle_kind=kind, whistle_kind_name="应急哨",
                     report_in_limit=limit, departments=list(departments),
                     reason="违建涉及供电线路，需联合处置")


async def on_whistle(env, handle: WorkflowHandle, no: int, kind: str, actor: Actor, **fields):
    whistle = env.client.get_workflow_handle(whistle_workflow_id(handle.id, no))
    command = WhistleCommand(request_id=uuid.uuid4().hex, actor=actor,
                             payload={"kind": kind, **fields})
    return await whistle.execute_update(WhistleWorkflow.act, command, id=command.request_id)


async def whistle_refused(env, handle, no, kind, actor, **fields) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await on_whistle(env, handle, no, kind, actor, **fields)
    return info.value.cause


async def case_state(handle: WorkflowHandle):
    return await handle.query(CaseWorkflow.state)


async def test_late_department_is_marked_reminded_again_and_stays_summoned(
        start, time_env, ledger):
    handle = await rectifying(start)
    result = await blow(handle)
    assert result.to_stage == Stage.ESCALATED
    assert result.state.whistles[0].departments == [HOUSING, POWER]

    await time_env.sleep(timedelta(minutes=10))
    await on_whistle(time_env, handle, 1, "report_in", HOUSING_OFFICER, note="已到现场")
    # Power does not report in: reminded at 80 % (24 min), late at 30 min, reminded every 30.
    await time_env.sleep(timedelta(minutes=21))
    whistle = ledger.whistles(handle.id)[0]
    housing, power = whistle.summons
    assert not housing.late and housing.reported_at is not None
    assert power.late and power.reported_at is None and power.reminded_at is not None
    assert abs(power.late_at - power.due_at) < timedelta(seconds=2)
    await time_env.sleep(timedelta(minutes=61))
    power = ledger.whistles(handle.id)[0].summons[1]
    assert power.reminders == 2

    await on_whistle(time_env, handle, 1, "report_in", POWER_OFFICER)
    await on_whistle(time_env, handle, 1, "report_done", HOUSING_OFFICER, note="已拆除违建")
    assert (await case_state(handle)).stage == Stage.ESCALATED  # one part still open
    state = await on_whistle(time_env, handle, 1, "report_done", POWER_OFFICER,
                             note="已迁改线路", evidence=["https://img.example.cn/line.jpg"])
    assert state.status == "completed"
    power = state.summons[1]
    assert power.late and power.reported_at is not None and power.done_at is not None

    await time_env.sleep(timedelta(seconds=5))
    case = await case_state(handle)
    assert case.stage == Stage.RECTIFYING
    assert case.whistles[0].status == "completed" and case.whistles[0].late_departments == [POWER]
    # The lead team then submits the rectification as usual.
    await rectify(handle)
    assert (await case_state(handle)).stage == Stage.VERIFYING

    actions = [e.action.value for e in ledger.whistle_history(handle.id)]
    assert actions[0] == "summon" and actions.count("report_in") == 2
    assert actions.count("whistle_late") == 1 and actions.count("whistle_remind") == 3
    case_actions = [e.action.value for e in ledger.history(handle.id)]
    assert case_actions[-3:] == ["whistle", "whistle_closed", "submit_rectification"]
    sent = {(n.kind, n.audience.value, n.recipient) for n in sent_to(ledger, handle)}
    assert {("whistle_summoned", "department", HOUSING), ("whistle_summoned", "department", POWER),
            ("whistle_late", "supervisors", None), ("whistle_reminder", "department", POWER),
            ("whistle_closed", "team", "环境卫生")} <= sent
    assert ("whistle_late", "supervisors", None) in sent
    assert not any(n.recipient == HOUSING and n.kind == "whistle_reminder"
                   for n in sent_to(ledger, handle))


async def test_supervisor_ends_a_whistle_and_a_second_whistle_keeps_its_own_record(
        start, time_env, ledger):
    handle = await rectifying(start)
    await blow(handle, departments=[HOUSING])
    await whistle_refused(time_env, handle, 1, "end_whistle", OFFICER, reason="结束")
    state = await on_whistle(time_env, handle, 1, "end_whistle", SUPERVISOR,
                             reason="协调会已明确分工，转常规整改")
    assert state.status == "ended" and state.end_reason.startswith("协调会")
    await time_env.sleep(timedelta(seconds=5))
    assert (await case_state(handle)).stage == Stage.RECTIFYING

    await blow(handle, kind="routine", limit="24h", departments=[POWER])
    case = await case_state(handle)
    assert case.stage == Stage.ESCALATED and [w.no for w in case.whistles] == [1, 2]
    await on_whistle(time_env, handle, 2, "report_in", POWER_OFFICER)
    await on_whistle(time_env, handle, 2, "report_done", POWER_OFFICER, note="已处理")
    await time_env.sleep(timedelta(seconds=5))
    case = await case_state(handle)
    assert case.stage == Stage.RECTIFYING
    assert [(w.no, w.status) for w in case.whistles] == [(1, "ended"), (2, "completed")]

    first, second = ledger.whistles(handle.id)
    assert first.summons[0].department == HOUSING and first.status == "ended"
    assert second.summons[0].department == POWER and second.status == "completed"


async def test_whistle_refusals(start, time_env, ledger):
    handle = await start("exposed_garbage")
    assert (await refused(handle, "whistle", OFFICER, whistle_kind="emergency",
                          report_in_limit="30m", departments=[HOUSING], reason="x")).type \
        == "stage_conflict"
    await act(handle, "accept", OFFICER)
    assert (await refused(handle, "whistle", MUNICIPAL_OFFICER, whistle_kind="emergency",
                          report_in_limit="30m", departments=[HOUSING], reason="x")).type \
        == "not_your_team"
    outsider = COMMUNITY.model_copy(update={"street": "吉日街道"})
    assert (await refused(handle, "whistle", outsider, whistle_kind="emergency",
                          report_in_limit="30m", departments=[HOUSING], reason="x")).type \
        == "not_your_area"
    assert (await refused(handle, "whistle", OFFICER, whistle_kind="emergency",
                          report_in_limit="30m", departments=[HOUSING, HOUSING],
                          reason="x")).type == "invalid_whistle"

    await blow(handle, actor=COMMUNITY, departments=[HOUSING])
    assert (await refused(handle, "submit_rectification", OFFICER, report="x")).type \
        == "stage_conflict"
    assert (await whistle_refused(time_env, handle, 1, "report_in", WATER_OFFICER)).type \
        == "not_summoned"
    assert (await whistle_refused(time_env, handle, 1, "report_done", HOUSING_OFFICER,
                                  note="x")).type == "not_reported_in"
    await on_whistle(time_env, handle, 1, "report_in", HOUSING_OFFICER)
    assert (await whistle_refused(time_env, handle, 1, "report_in", HOUSING_OFFICER)).type \
        == "already_reported"
    assert [e.action.value for e in ledger.whistle_history(handle.id)] == ["summon", "report_in"]

