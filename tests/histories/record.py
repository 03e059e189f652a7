"""Record the Temporal histories that tests/test_replay.py replays.

Every path of the case lifecycle is driven with the current workflow code on the time-skipping
test server (so the 回头看 interval, the evaluation window and step deadlines really fire),
with a real worker and a SQLite ledger in a temporary directory, and each workflow's history is
written to tests/histories/<name>.json exactly as `fetch_history().to_json()` gives it (the
format of `temporal workflow show --output json`). A whistle's history is
`<case>.whistle-<n>.json`, each run of a case that continued as new `<case>.run-<n>.json`.

    .venv/bin/python -m tests.histories.record             # every scenario, overwriting
    .venv/bin/python -m tests.histories.record rebound     # only the named ones
    .venv/bin/python -m tests.histories.record --list

Record when workflow behaviour changes on purpose, and keep the old files: they are the cases
still open in production, which the new code must replay (behind `workflow.patched`). New
recordings get a new name (e.g. `rebound.v2`) rather than replacing the ones a release made.
"""

import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from config.catalog import DEFAULT_CONFIG_DIR, Catalog, load_catalog
from domain.models import Actor, Urgency
from domain.roles import Role
from domain.whistles import WhistleCommand, whistle_workflow_id
from ledger.db import make_engine
from ledger.migrate import upgrade
from ledger.repository import Ledger
from runtime.cases import record_and_start, start_case
from runtime.scripts import run_and_exit
from runtime.worker import build_worker
from tests.factories import (COMMUNITY, DISPATCHER, HOTLINE, INSPECTOR, MUNICIPAL_OFFICER,
                             OFFICER, OTHER_OFFICER, SUPERVISOR, cmd, intake, policy)
from tests.workflow_steps import settled
from workflows.case import CaseWorkflow
from workflows.whistle import WhistleWorkflow

HISTORIES = Path(__file__).parent
TASK_QUEUE = "record-histories"
HOUSING = "拉萨市住房和城乡建设局"
POWER = "国网拉萨供电公司"
HOUSING_OFFICER = Actor(id="dep-zj-01", name="张工", role=Role.DEPARTMENT, department=HOUSING)
POWER_OFFICER = Actor(id="dep-gd-01", name="李工", role=Role.DEPARTMENT, department=POWER)


@dataclass
class Run:
    """One scenario on its server: starts cases, acts on them, lets time pass."""
    env: WorkflowEnvironment
    catalog: Catalog
    name: str
    ledger: Ledger

    @property
    def ledger_first(self) -> bool:
        """Opened as the API opens cases since the opening is recorded first: the workflow
        neither writes the opening nor asks for the lean-loop patch."""
        return self.name.endswith(LEDGER_FIRST)

    async def open(self, category: str | None = "exposed_garbage",
                   urgency: Urgency = Urgency.NORMAL, **overrides) -> WorkflowHandle:
        case_policy = policy(self.catalog, category, urgency) if category else None
        overrides.setdefault("opened_at", await self.env.get_current_time())
        overrides.setdefault("calendar", self.catalog.calendar)
        case = intake(case_policy, case_id=self.name, **overrides)
        if self.ledger_first:
            await record_and_start(self.env.client, self.ledger, case, TASK_QUEUE)
            run_id = (await self.env.client.get_workflow_handle(case.case_id).describe()).run_id
            handle = self.env.client.get_workflow_handle_for(
                CaseWorkflow.run, case.case_id, first_execution_run_id=run_id)
        else:
            handle = await start_case(self.env.client, case, TASK_QUEUE)
        await settled(handle)
        return handle

    async def act(self, handle: WorkflowHandle, kind: str, actor: Actor, **fields):
        command = cmd(kind, actor, **fields)
        result = await handle.execute_update(CaseWorkflow.act, command, id=command.request_id)
        await settled(handle)
        return result

    async def whistle_act(self, handle: WorkflowHandle, no: int, kind: str, actor: Actor,
                          **fields):
        whistle = self.env.client.get_workflow_handle(whistle_workflow_id(handle.id, no))
        command = WhistleCommand(request_id=uuid.uuid4().hex, actor=actor,
                                 payload={"kind": kind, **fields})
        return await whistle.execute_update(WhistleWorkflow.act, command, id=command.request_id)

    async def sleep(self, duration: timedelta, handle: WorkflowHandle) -> None:
        await self.env.sleep(duration)
        await settled(handle)


async def to_evaluating(run: Run, handle: WorkflowHandle, officer: Actor = OFFICER) -> None:
    await run.act(handle, "accept", officer, note="已签收")
    await rectify(run, handle, officer)
    await run.act(handle, "verify", INSPECTOR, passed=True, note="现场已清理")


async def rectify(run: Run, handle: WorkflowHandle, officer: Actor = OFFICER) -> None:
    await run.act(handle, "submit_rectification", officer, report="已清运垃圾并消杀",
                  evidence=["https://img.example.cn/after.jpg"])


async def recheck_due(run: Run, handle: WorkflowHandle) -> None:
    days = (await handle.query(CaseWorkflow.state)).policy.recheck_interval_days
    await run.sleep(timedelta(days=days, minutes=1), handle)


# ---- the scenarios: each returns the workflows whose histories it records, by file name --------

Recorded = dict[str, WorkflowHandle]


async def ordinary_closed(run: Run) -> Recorded:
    """Auto-routed by its category, rectified, verified, rated 满意, 回头看 timer, consolidated."""
    handle = await run.open()
    await to_evaluating(run, handle)
    await run.act(handle, "evaluate", HOTLINE, rating="满意")
    await recheck_due(run, handle)
    await run.act(handle, "recheck", INSPECTOR, result="consolidated", note="未反弹")
    await handle.result()
    return {run.name: handle}


async def dispatcher_assigned(run: Run) -> Recorded:
    """No known category: the dispatcher assigns it; later a supervisor brings the recheck
    forward and it closes."""
    handle = await run.open(category=None, category_hint="其他-未分类")
    await run.act(handle, "assign", DISPATCHER, team="环境卫生",
                  policy=policy(run.catalog, "exposed_garbage"), note="派环境卫生专班")
    await to_evaluating(run, handle)
    await run.act(handle, "evaluate", HOTLINE, rating="非常满意")
    await run.act(handle, "bring_recheck_forward", SUPERVISOR, note="节前抽查")
    await run.act(handle, "recheck", INSPECTOR, result="consolidated")
    await handle.result()
    return {run.name: handle}


async def dispatcher_rejected(run: Run) -> Recorded:
    handle = await run.open(category=None, category_hint="其他-未分类")
    await run.act(handle, "reject", DISPATCHER, reason="重复上报", duplicate_of="hotline-000001")
    await handle.result()
    return {run.name: handle}


async def returned_redispatched(run: Run) -> Recorded:
    """退单 by the wrong team, 改派 to another, which signs for it and rectifies."""
    handle = await run.open()
    await run.act(handle, "return", OFFICER, reason="该井盖属于市政设施专班管辖")
    await run.act(handle, "assign", DISPATCHER, team="市政设施",
                  policy=policy(run.catalog, "manhole_cover"), note="改派市政设施专班")
    await run.act(handle, "accept", MUNICIPAL_OFFICER)
    await rectify(run, handle, MUNICIPAL_OFFICER)
    return {run.name: handle}


async def failed_verification(run: Run) -> Recorded:
    handle = await run.open()
    await run.act(handle, "accept", OFFICER)
    await rectify(run, handle)
    await run.act(handle, "verify", INSPECTOR, passed=False, note="仍有垃圾残留")
    await rectify(run, handle, OTHER_OFFICER)
    await run.act(handle, "verify", INSPECTOR, passed=True)
    return {run.name: handle}


async def review_upheld(run: Run) -> Recorded:
    handle = await run.open()
    await to_evaluating(run, handle)
    await run.act(handle, "evaluate", HOTLINE, rating="不满意", comment="还有异味")
    await run.act(handle, "review", COMMUNITY, decision="uphold", note="已消杀，异味来自周边餐馆")
    return {run.name: handle}


async def review_reopened(run: Run) -> Recorded:
    handle = await run.open()
    await to_evaluating(run, handle)
    await run.act(handle, "evaluate", HOTLINE, rating="very_unsatisfied")
    await run.act(handle, "review", COMMUNITY, decision="reopen", note="现场核实仍有垃圾")
    await rectify(run, handle, OTHER_OFFICER)
    return {run.name: handle}


async def rebound(run: Run) -> Recorded:
    """反弹 at the 回头看: a second round, then consolidated and closed."""
    handle = await run.open(category="street_light_out")
    officer = MUNICIPAL_OFFICER
    await run.act(handle, "accept", officer)
    for result in ("rebounded", "consolidated"):
        await rectify(run, handle, officer)
        await run.act(handle, "verify", INSPECTOR, passed=True)
        await run.act(handle, "evaluate", HOTLINE, rating="非常满意")
        await recheck_due(run, handle)
        await run.act(handle, "recheck", INSPECTOR, result=result, note="路灯复查")
    await handle.result()
    return {run.name: handle}


async def no_rating(run: Run) -> Recorded:
    """No rating within the evaluation window: recorded as no response, on to the recheck."""
    handle = await run.open()
    await to_evaluating(run, handle)
    await run.sleep(timedelta(days=run.catalog.evaluation_window_days, minutes=1), handle)
    return {run.name: handle}


async def whistle(run: Run) -> Recorded:
    """吹哨报到: one department in on time, one late and reminded, both done, then rectified."""
    handle = await run.open()
    await run.act(handle, "accept", OFFICER)
    await run.act(handle, "whistle", OFFICER, whistle_kind="emergency",
                  whistle_kind_name="应急哨", report_in_limit="30m",
                  departments=[HOUSING, POWER], reason="违建涉及供电线路，需联合处置")
    await run.sleep(timedelta(minutes=10), handle)
    await run.whistle_act(handle, 1, "report_in", HOUSING_OFFICER, note="已到现场")
    await run.sleep(timedelta(minutes=40), handle)
    await run.whistle_act(handle, 1, "report_in", POWER_OFFICER)
    await run.whistle_act(handle, 1, "report_done", HOUSING_OFFICER, note="已拆除违建")
    await run.whistle_act(handle, 1, "report_done", POWER_OFFICER, note="已迁改线路")
    child = run.env.client.get_workflow_handle(whistle_workflow_id(handle.id, 1))
    await child.result()
    await run.sleep(timedelta(seconds=5), handle)
    await rectify(run, handle)
    return {run.name: handle, f"{run.name}.whistle-1": child}


async def whistle_ended(run: Run) -> Recorded:
    """A supervisor ends a whistle; the case is whistled again."""
    handle = await run.open()
    await run.act(handle, "accept", OFFICER)
    for no, departments in ((1, [HOUSING]), (2, [POWER])):
        await run.act(handle, "whistle", COMMUNITY, whistle_kind="routine",
                      whistle_kind_name="日常哨", report_in_limit="24h",
                      departments=departments, reason="需多部门协同")
        if no == 1:
            await run.whistle_act(handle, 1, "end_whistle", SUPERVISOR,
                                  reason="协调会已明确分工，转常规整改")
        else:
            await run.whistle_act(handle, 2, "report_in", POWER_OFFICER)
            await run.whistle_act(handle, 2, "report_done", POWER_OFFICER, note="已处理")
        await run.env.client.get_workflow_handle(whistle_workflow_id(handle.id, no)).result()
        await run.sleep(timedelta(seconds=5), handle)
    return {run.name: handle, **{
        f"{run.name}.whistle-{no}": run.env.client.get_workflow_handle(
            whistle_workflow_id(handle.id, no)) for no in (1, 2)}}


async def extension_approved(run: Run) -> Recorded:
    """延期 asked by the team and approved by a supervisor; the new deadline then passes."""
    handle = await run.open(urgency=Urgency.URGENT)
    await run.act(handle, "accept", OFFICER)
    await run.act(handle, "request_extension", OFFICER, extend_by="4h", reason="需等待渣土车调度")
    await run.act(handle, "decide_extension", SUPERVISOR, approved=True, note="同意")
    await run.sleep(timedelta(hours=14), handle)
    await rectify(run, handle)
    return {run.name: handle}


async def extension_denied(run: Run) -> Recorded:
    handle = await run.open(urgency=Urgency.URGENT)
    await run.act(handle, "accept", OFFICER)
    await run.act(handle, "request_extension", OFFICER, extend_by="2h", reason="人手不足")
    await run.act(handle, "decide_extension", SUPERVISOR, approved=False, note="不同意")
    return {run.name: handle}


async def overdue_step(run: Run) -> Recorded:
    """签收 not done in time: 催办 at 80 %, 超时 and 督办 at the limit, then signed for late;
    a supplement and an urging arrive as signals on the way."""
    handle = await run.open(category="street_light_out")
    await handle.signal(CaseWorkflow.note, cmd("supplement", HOTLINE, "sup-1",
                                               content="市民补充：整条巷子都不亮"))
    await run.sleep(timedelta(days=4), handle)
    await handle.signal(CaseWorkflow.note, cmd("urge", SUPERVISOR, "urge-1", note="请今日办结"))
    await settled(handle)
    await run.act(handle, "accept", MUNICIPAL_OFFICER)
    return {run.name: handle}


async def continued_as_new(run: Run) -> Recorded:
    """A case past its history limit (60 events here) continues as new, carrying its state
    and recent request ids; both runs are recorded."""
    handle = await run.open(history_event_limit=60)
    await run.act(handle, "accept", OFFICER)
    run_ids = [handle.first_execution_run_id]
    while len(run_ids) == 1:
        await rectify(run, handle, OTHER_OFFICER)
        await run.act(handle, "verify", INSPECTOR, passed=False, note="仍有残留")
        first = run.env.client.get_workflow_handle(handle.id, run_id=run_ids[0])
        last = (await first.fetch_history()).events[-1]
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            attributes = last.workflow_execution_continued_as_new_event_attributes
            run_ids.append(attributes.new_execution_run_id)
    await rectify(run, handle)
    return {f"{run.name}.run-{n}": run.env.client.get_workflow_handle(handle.id, run_id=run_id)
            for n, run_id in enumerate(run_ids, 1)}


Scenario = Callable[[Run], Awaitable[Recorded]]
# Each on its own server: a child workflow stops the test server skipping time afterwards
# (sdk-java#1618), and the calendar's years must hold the clock.
SCENARIOS: dict[str, Scenario] = {
    "ordinary-closed": ordinary_closed,
    "dispatcher-assigned": dispatcher_assigned,
    "dispatcher-rejected": dispatcher_rejected,
    "returned-redispatched": returned_redispatched,
    "failed-verification": failed_verification,
    "review-upheld": review_upheld,
    "review-reopened": review_reopened,
    "rebound": rebound,
    "no-rating": no_rating,
    "whistle": whistle,
    "whistle-ended": whistle_ended,
    "extension-approved": extension_approved,
    "extension-denied": extension_denied,
    "overdue-step": overdue_step,
    "continued-as-new": continued_as_new,
}
LEDGER_FIRST = ".ledger-first"
SCENARIOS |= {name + LEDGER_FIRST: SCENARIOS[name]
              for name in ("ordinary-closed", "whistle", "overdue-step", "continued-as-new")}


async def record(name: str, catalog: Catalog, executor: ThreadPoolExecutor) -> list[Path]:
    from tests.conftest import start_time_skipping_env
    env = await start_time_skipping_env()
    written = []
    try:
        with tempfile.TemporaryDirectory(prefix="bihuan-histories-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
            upgrade(url)
            engine = make_engine(url)
            try:
                ledger = Ledger(engine)
                async with build_worker(env.client, TASK_QUEUE, ledger, executor):
                    recorded = await SCENARIOS[name](Run(env, catalog, name, ledger))
                    for stem, handle in recorded.items():
                        path = HISTORIES / f"{stem}.json"
                        path.write_text((await handle.fetch_history()).to_json() + "\n")
                        written.append(path)
                    for handle in recorded.values():
                        await terminate_if_open(handle)
            finally:
                engine.dispose()
    finally:
        await env.shutdown()
    return written


async def terminate_if_open(handle: WorkflowHandle) -> None:
    # Open cases' timers would otherwise fire for a worker that is gone.
    if (await handle.describe()).close_time is None:
        await handle.terminate(reason="recorded")


async def main(names: list[str]) -> int:
    if "--list" in names:
        print("\n".join(SCENARIOS))
        return 0
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; see --list", file=sys.stderr)
        return 2
    catalog = load_catalog(DEFAULT_CONFIG_DIR)
    with ThreadPoolExecutor(max_workers=8) as executor:
        for name in names or list(SCENARIOS):
            for path in await record(name, catalog, executor):
                print(f"recorded {path.relative_to(HISTORIES.parent.parent)}")
    return 0


if __name__ == "__main__":
    run_and_exit(main(sys.argv[1:]))
