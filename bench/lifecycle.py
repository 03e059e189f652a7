"""The whole case loop over HTTP, side by side with bare Temporal on the same server.

Starts its own dev server, worker and API (bench/system.py) and measures, in one run:

- bihuan: N cases driven over HTTP with real tokens by C concurrent clients through the ordinary
  loop — open, accept, submit rectification, verify, evaluate, recheck brought forward, recheck
  consolidated — with 10 % taking a failed verification first and 5 % a whistle of two
  departments (report in, report done) before the rectification;
- the floor: a trivial workflow (bench/floor.py) given the same number of updates per case, each
  running one local activity, driven by the same number of clients through the Temporal client.

With --shaped, the floor carrying a real case's data (bench/floor.py) takes a third turn.

Each is first run with one client (latency without queueing, and whether the case's ledger row
is current when the action answers), then with C clients, in rounds that take turns (floor,
bihuan, bihuan, floor, …): the machine is shared and its speed drifts within minutes, and taking
turns gives both the same stretches of it. It prints cases/s, step round trips/s,
p50/p95/p99 per step kind, the history events of an ordinary case, the server's persistence
requests per step, peak RSS of the worker and the API, and bihuan's step throughput as a share
of the floor's. Exits non-zero if a case ends in the wrong stage (checked after the measured
stretch) or a step fails.

Run: .venv/bin/python bench/lifecycle.py [--cases 1000] [--clients 50] [--single-cases 20]
                                         [--rounds 10] [--shaped]
"""

import argparse
import asyncio
import json
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.common import TypedSearchAttributes
from temporalio.converter import decode_typed_search_attributes

from api.auth import mint_token
from domain.models import Actor
from domain.roles import Role
from runtime.temporal import connect
from sampling import sampled
from runtime.scripts import exit_with
from system import System, peak_rss_mib, running_system, server_metric
from floor import FloorWorkflow, ShapedFloorWorkflow, TASK_QUEUE as FLOOR_QUEUE

HOTLINE = Actor(id="hotline-12345", name="12345热线平台", role=Role.HOTLINE)
OFFICER = Actor(id="o017", name="扎西", role=Role.OFFICER, team="环境卫生")
INSPECTOR = Actor(id="i003", name="卓玛", role=Role.INSPECTOR)
SUPERVISOR = Actor(id="s001", name="领导小组办公室", role=Role.SUPERVISOR)
DEPARTMENTS = [Actor(id="dep-zj-01", name="张工", role=Role.DEPARTMENT,
                     department="拉萨市住房和城乡建设局"),
               Actor(id="dep-gd-01", name="李工", role=Role.DEPARTMENT,
                     department="国网拉萨供电公司")]

# Officer actions (updates) per kind of case; the floor gets as many per case.
UPDATES = {"ordinary": 6, "failed_verification": 8, "whistle": 11}
# The metric the dev server counts every read and write to its database by.
PERSISTENCE = "persistence_requests"
TARGETS = {"throughput_ratio": 0.8, "events_per_action": 7.0, "p95_ratio": 1.3,
           "single_p50_ms": 30.0, "ledger_lag_s": 1.0}


def case_kind(i: int) -> str:
    """5 % whistled, 10 % failing verification once, the rest ordinary; spread evenly."""
    if i % 20 == 10:
        return "whistle"
    if i % 10 == 3:
        return "failed_verification"
    return "ordinary"


@dataclass
class Phase:
    name: str
    clients: int
    cases: int = 0
    elapsed: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    wrong: list[str] = field(default_factory=list)
    ledger_lags: list[float] = field(default_factory=list)
    persistence: float = 0.0
    # Case index → workflow id.
    ids: dict[int, str] = field(default_factory=dict)
    # Process → CPU seconds used during the phase.
    cpu: dict[str, float] = field(default_factory=dict)
    # "first queued", "first run", "later queued", "later run" → seconds, from sampled histories.
    task_waits: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    @property
    def steps(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.elapsed

    def actions(self) -> list[float]:
        """Every step but the opening: the updates, over HTTP or not."""
        return [x for kind, v in self.latencies.items() if kind not in ("open", "start")
                for x in v]

    def record(self, kind: str, started: float) -> None:
        self.latencies[kind].append(time.perf_counter() - started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def clients_drive(phase: Phase, cases: range, drive: Callable[[int], Awaitable[None]]):
    pending = iter(cases)

    async def client() -> None:
        for i in pending:
            await drive(i)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(phase.clients)))
    # Added up: a phase may be run in several rounds.
    phase.elapsed += time.perf_counter() - started
    phase.cases += len(cases)


def http_session(system: System, clients: int) -> aiohttp.ClientSession:
    """Up to one kept-alive connection per client, as officers' apps would hold them."""
    return aiohttp.ClientSession(system.api_url, connector=aiohttp.TCPConnector(limit=clients),
                                 timeout=aiohttp.ClientTimeout(total=60))


class Api:
    """One officer's view of the HTTP API: every request timed under its step kind."""

    def __init__(self, http: aiohttp.ClientSession, phase: Phase, check_ledger: bool) -> None:
        self.http, self.phase, self.check_ledger = http, phase, check_ledger

    async def post(self, kind: str, path: str, body: dict, who: Actor) -> dict:
        key = uuid.uuid4().hex
        for _ in range(3):
            started = time.perf_counter()
            async with self.http.post(path, json=body, headers={
                    "Authorization": TOKENS[who.id], "Idempotency-Key": key}) as response:
                status, text = response.status, await response.text()
            if status != 504:  # action_pending: ask again with the same key
                break
        if status not in (200, 201):
            raise RuntimeError(f"{kind} {path}: {status} {text}")
        self.phase.record(kind, started)
        return json.loads(text)

    async def act(self, case_id: str, action: str, body: dict, who: Actor) -> dict:
        result = await self.post(action, f"/cases/{case_id}/actions/{action}", body, who)
        if self.check_ledger:
            await self.ledger_lag(case_id, result["to_stage"])
        return result

    async def case(self, case_id: str) -> dict:
        async with self.http.get(f"/cases/{case_id}", raise_for_status=True,
                                 headers={"Authorization": TOKENS[SUPERVISOR.id]}) as response:
            return await response.json()

    async def stage(self, case_id: str) -> str:
        return (await self.case(case_id))["stage"]

    async def ledger_lag(self, case_id: str, stage: str) -> None:
        """How long after the answer the ledger row (what GET /cases reads) shows the stage."""
        answered = time.perf_counter()
        while await self.stage(case_id) != stage:
            if time.perf_counter() - answered > 10:
                raise RuntimeError(f"{case_id}: the ledger never showed {stage}")
            await asyncio.sleep(0.01)
        self.phase.ledger_lags.append(time.perf_counter() - answered)

    async def until_stage(self, case_id: str, stage: str) -> None:
        # As an officer's app would look again, not as fast as it can: at every 20 ms a
        # whistled case took 15 reads, and the reads of all of them came to a tenth of the
        # steps, uncounted.
        for _ in range(200):
            await asyncio.sleep(0.1)
            if await self.stage(case_id) == stage:
                return
        raise RuntimeError(f"{case_id} never reached {stage}")


def new_case(category: str = "暴露垃圾") -> dict:
    return {"source": "hotline", "external_id": f"bench-{uuid.uuid4().hex[:16]}",
            "category": category, "description": "吉日巷口垃圾堆积三天无人清运",
            "location": {"district": "城关区", "street": "八廓街道", "address": "吉日巷12号旁"},
            "reporter": {"name": "王女士", "phone": "13800000000"}}


RECTIFIED = {"report": "已清运垃圾并消杀", "evidence": ["https://img.example.cn/after.jpg"]}


async def bihuan_case(api: Api, i: int) -> None:
    kind = case_kind(i)
    case_id = (await api.post("open", "/cases", new_case(), HOTLINE))["case_id"]
    api.phase.ids[i] = case_id
    if api.check_ledger:
        await api.ledger_lag(case_id, "assigned")
    await api.act(case_id, "accept", {}, OFFICER)
    if kind == "whistle":
        await api.act(case_id, "whistle", {
            "kind": "tough", "departments": [d.department for d in DEPARTMENTS],
            "reason": "违建涉及供电线路，需住建、供电部门联合处置"}, OFFICER)
        for step, body in (("report_in", {"note": "已到现场"}), ("report_done", {"note": "已完成"})):
            for department in DEPARTMENTS:
                await api.post(step, f"/cases/{case_id}/whistles/1/{step}", body, department)
        # The whistle's end reaches the case as its child's completion, just after the answer.
        await api.until_stage(case_id, "rectifying")
    await api.act(case_id, "submit_rectification", RECTIFIED, OFFICER)
    if kind == "failed_verification":
        await api.act(case_id, "verify", {"passed": False, "note": "仍有垃圾"}, INSPECTOR)
        await api.act(case_id, "submit_rectification", RECTIFIED, OFFICER)
    await api.act(case_id, "verify", {"passed": True, "note": "现场已清理"}, INSPECTOR)
    await api.act(case_id, "evaluate", {"rating": "满意"}, HOTLINE)
    await api.act(case_id, "bring_recheck_forward", {"note": "基准测试：提前回头看"}, SUPERVISOR)
    await api.act(case_id, "recheck", {"result": "consolidated", "note": "未反弹"}, INSPECTOR)


async def run_bihuan(system: System, phase: Phase, cases: range, check_ledger: bool) -> Phase:
    async with http_session(system, phase.clients) as http:
        api = Api(http, phase, check_ledger)
        async with measured(system, phase):
            await clients_drive(phase, cases, lambda i: bihuan_case(api, i))
        # After the measured stretch, as the floor's results are read: a check, not a step.
        finals = await asyncio.gather(*(api.stage(phase.ids[i]) for i in cases))
    phase.wrong += [f"{phase.ids[i]} ({case_kind(i)}) ended {final}"
                    for i, final in zip(cases, finals) if final != "closed"]
    return phase


@asynccontextmanager
async def measured(system: System, phase: Phase):
    """The server's persistence requests and each process's CPU time during the phase."""
    requests, cpu = server_metric(system, PERSISTENCE), system.cpu()
    yield
    phase.persistence += server_metric(system, PERSISTENCE) - requests
    for name, used in system.cpu().items():
        phase.cpu[name] = phase.cpu.get(name, 0.0) + used - cpu[name]


@dataclass(frozen=True)
class Shape:
    """What a real case gave the server to keep, for the shaped floor to carry alike."""
    intake: bytes
    command: bytes
    result_size: int
    search_attributes: TypedSearchAttributes


async def case_shape(client: Client, phase: Phase) -> Shape:
    """From the history of the phase's first ordinary case: its start input, its first command
    and the mean size of its update results (its state, which grows as the case goes on)."""
    _, events = await first_ordinary_history(client, phase)
    started = events[0].workflow_execution_started_event_attributes
    commands = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input
                .args.payloads[0].data for e in events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    results = [len(e.workflow_execution_update_completed_event_attributes.outcome.success
                   .payloads[0].data) for e in events
               if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
    return Shape(started.input.payloads[0].data, commands[0], sum(results) // len(results),
                 decode_typed_search_attributes(started.search_attributes))


async def run_floor(system: System, client: Client, phase: Phase, cases: range,
                    shape: Shape | None = None) -> Phase:
    run_id = uuid.uuid4().hex[:8]

    if shape is None:
        def start(i: int, steps: int):
            return client.start_workflow(FloorWorkflow.run, steps, id=f"floor-{run_id}-{i}",
                                         task_queue=FLOOR_QUEUE)

        def step(handle, n: int):
            return handle.execute_update(FloorWorkflow.step, n, id=f"step-{n}")
    else:
        def start(i: int, steps: int):
            return client.start_workflow(
                ShapedFloorWorkflow.run, args=[steps, shape.intake, shape.result_size],
                id=f"shaped-{run_id}-{i}", task_queue=FLOOR_QUEUE,
                search_attributes=shape.search_attributes)

        def step(handle, n: int):
            return handle.execute_update(ShapedFloorWorkflow.step, shape.command,
                                         id=f"step-{n}")

    async def drive(i: int) -> None:
        steps = UPDATES[case_kind(i)]
        started = time.perf_counter()
        handle = await start(i, steps)
        phase.record("start", started)
        phase.ids[i] = handle.id
        for n in range(steps):
            started = time.perf_counter()
            await step(handle, n)
            phase.record("update", started)

    async with measured(system, phase):
        await clients_drive(phase, cases, drive)
    # Each workflow completed with its last update; its result is read after the stretch.
    results = await asyncio.gather(*(client.get_workflow_handle(phase.ids[i]).result()
                                     for i in cases))
    if shape is None:
        phase.wrong += [f"{phase.ids[i]} counted {n} of {UPDATES[case_kind(i)]} updates"
                        for i, n in zip(cases, results) if n != UPDATES[case_kind(i)]]
    return phase


async def first_ordinary_history(client: Client, phase: Phase) -> tuple[str, list]:
    """The workflow id and the history events of the phase's first ordinary case."""
    first = phase.ids[min(i for i in phase.ids if case_kind(i) == "ordinary")]
    return first, (await client.get_workflow_handle(first).fetch_history()).events


async def ordinary_case_events(client: Client, phase: Phase,
                               sequence: bool = False) -> tuple[int, int]:
    """The history of the phase's first ordinary case: its events, and their size in bytes."""
    workflow_id, events = await first_ordinary_history(client, phase)
    if sequence:
        print(f"\n{workflow_id}, ms after the start:")
        start = events[0].event_time.ToDatetime()
        for event in events:
            offset = (event.event_time.ToDatetime() - start).total_seconds() * 1000
            kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
            print(f"   {offset:9.1f}  {kind}")
    return len(events), sum(event.ByteSize() for event in events)


async def sample_task_waits(client: Client, phase: Phase, sample: int = 80) -> None:
    """Where a case's time goes on the server, from the histories of `sample` cases: how long
    each workflow task was queued (scheduled → started) and how long it took to answer (started
    → completed: the worker, with its local activity, and the way there and back), as the
    history's timestamps have it. A case's first task is reported apart: it reaches matching
    through the history service's transfer queue, while an update's task goes straight to the
    worker that has the case cached, and its timestamps leave out the wait for the server to
    take its completion (bench/README.md)."""
    ids = sorted(phase.ids)
    histories = await asyncio.gather(*(client.get_workflow_handle(phase.ids[i]).fetch_history()
                                       for i in ids[::max(1, len(ids) // sample)]))
    for history in histories:
        first, scheduled, started = True, None, None
        for event in history.events:
            at = event.event_time.ToMicroseconds() / 1e6
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
                scheduled = at
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                started = at
                phase.task_waits["first queued" if first else "later queued"].append(at - scheduled)
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                phase.task_waits["first run" if first else "later run"].append(at - started)
                first = False


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def print_phase(phase: Phase) -> None:
    print(f"\n== {phase.name}: {phase.cases} cases, {phase.clients} client(s), "
          f"{phase.elapsed:.1f} s")
    print(f"   cases/s {phase.cases / phase.elapsed:8.2f}   step round trips/s "
          f"{phase.steps_per_s:8.2f}   server persistence requests/step "
          f"{phase.persistence / max(phase.steps, 1):6.1f}")
    per_step = ", ".join(f"{name} {1000 * used / max(phase.steps, 1):.1f}"
                         for name, used in sorted(phase.cpu.items()))
    print(f"   CPU ms per step: {per_step}")
    print(f"   {'step':<24}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    rows = sorted(phase.latencies.items()) + [("(all actions)", phase.actions())]
    for kind, values in rows:
        print(f"   {kind:<24}{len(values):7d}{ms(percentile(values, .5)):>9}"
              f"{ms(percentile(values, .95)):>9}{ms(percentile(values, .99)):>9}")
    if phase.task_waits:
        waits = {k: "/".join(f"{percentile(v, q) * 1000:.0f}" for q in (.5, .95))
                 for k, v in phase.task_waits.items()}
        print(f"   workflow tasks, p50/p95 ms: a case's first queued {waits['first queued']}, "
              f"started→completed {waits['first run']}; later ones queued "
              f"{waits['later queued']}, started→completed {waits['later run']}")
    if phase.ledger_lags:
        print(f"   ledger row current after the answer: max {max(phase.ledger_lags) * 1000:.1f} ms"
              f" over {len(phase.ledger_lags)} actions")


def verdict(name: str, value: float, target: float, at_most: bool = True) -> bool:
    ok = value <= target if at_most else value >= target
    sign = "≤" if at_most else "≥"
    print(f"   {'met ' if ok else 'MISSED'}  {name:<46} {value:8.2f}  (target {sign} {target})")
    return ok


TOKENS: dict[str, str] = {}


def mint_tokens(system: System, *actors: Actor) -> None:
    for who in actors:
        TOKENS[who.id] = f"Bearer {mint_token(system.settings, who)}"


def main(cases: int, clients: int, single_cases: int, sequence: bool,
         profile: Path | None, rounds: int = 10, shaped: bool = False) -> int:
    # Started outside the event loop: waiting for the server runs a loop of its own.
    with running_system() as system:
        return asyncio.run(measure(system, cases, clients, single_cases, sequence, profile,
                                   rounds, shaped))


def in_rounds(cases: int, rounds: int) -> list[range]:
    """Consecutive case numbers (so each round keeps the mix of case kinds), `rounds` parts."""
    bounds = [cases * n // rounds for n in range(rounds + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


async def measure(system: System, cases: int, clients: int, single_cases: int,
                  sequence: bool, profile: Path | None, rounds: int, shaped: bool) -> int:
    mint_tokens(system, HOTLINE, OFFICER, INSPECTOR, SUPERVISOR, *DEPARTMENTS)
    system.spawn("floor", os.path.join(os.path.dirname(__file__), "floor.py"),
                 "--address", system.settings.temporal_address,
                 "--namespace", system.settings.temporal_namespace)
    client = await connect(system.settings)
    # One client first: latency without queueing, the ledger's lag, and a warm-up.
    floor_one = await run_floor(system, client, Phase("floor, one client", 1),
                                range(single_cases))
    bihuan_one = await run_bihuan(system, Phase("bihuan over HTTP, one client", 1),
                                  range(single_cases), check_ledger=True)
    floor, bihuan = Phase("floor", clients), Phase("bihuan over HTTP", clients)
    shaped_floor = Phase("floor shaped like a case", clients) if shaped else None
    shape = await case_shape(client, bihuan_one) if shaped else None
    concurrent = [phase for phase in (floor, bihuan, shaped_floor) if phase]
    # While the floor runs, bihuan's worker and API idle: their samples are few.
    with sampled(profile, {name: system.pid(name) for name in ("worker", "api")}):
        for n, part in enumerate(in_rounds(cases, rounds)):
            turns = [lambda: run_floor(system, client, floor, part),
                     lambda: run_bihuan(system, bihuan, part, check_ledger=False)]
            if shaped_floor:
                turns.append(lambda: run_floor(system, client, shaped_floor, part, shape))
            for turn in turns if n % 2 == 0 else reversed(turns):
                await turn()
    events, size = await ordinary_case_events(client, bihuan, sequence)
    floor_events, floor_size = await ordinary_case_events(client, floor)
    for phase in concurrent:
        await sample_task_waits(client, phase)
    rss = {name: peak_rss_mib(system.pid(name)) for name in ("worker", "api")}

    for phase in (floor_one, bihuan_one, *concurrent):
        print_phase(phase)
    ratio = bihuan.steps_per_s / floor.steps_per_s
    p95_ratio = percentile(bihuan.actions(), .95) / percentile(floor.actions(), .95)
    per_action = events / UPDATES["ordinary"]
    print(f"\nhistory events of an ordinary case: {events} for {UPDATES['ordinary']} officer "
          f"actions = {per_action:.1f} per action, {size / 1024:.1f} KiB (the floor's: "
          f"{floor_events}, {floor_events / UPDATES['ordinary']:.1f} per update, "
          f"{floor_size / 1024:.1f} KiB)")
    print(f"peak RSS: worker {rss['worker']:.0f} MiB, API {rss['api']:.0f} MiB")
    if shaped_floor:
        shaped_events, shaped_size = await ordinary_case_events(client, shaped_floor)
        print(f"the shaped floor: {shaped_events} events, {shaped_size / 1024:.1f} KiB for an "
              f"ordinary case; its step throughput / the floor's "
              f"{shaped_floor.steps_per_s / floor.steps_per_s:.2f} (what the server spends on "
              f"a case's data), bihuan's / its {bihuan.steps_per_s / shaped_floor.steps_per_s:.2f}"
              f" (what bihuan's own code costs)")
    print("\ntargets:")
    verdict("step throughput, bihuan / floor", ratio, TARGETS["throughput_ratio"], at_most=False)
    verdict("history events per officer action", per_action, TARGETS["events_per_action"])
    verdict(f"p95 of an action at {clients} clients, bihuan / floor", p95_ratio,
            TARGETS["p95_ratio"])
    single, floor_single = (percentile(phase.actions(), .5) * 1000
                            for phase in (bihuan_one, floor_one))
    verdict(f"one client: median action, ms (floor: {floor_single:.1f})",
            single, TARGETS["single_p50_ms"])
    verdict("ledger row current after the answer (s, max)",
            max(bihuan_one.ledger_lags, default=0.0), TARGETS["ledger_lag_s"])
    print(f"\nlifecycle cases={cases} clients={clients} "
          f"bihuan_steps_per_s={bihuan.steps_per_s:.1f} "
          f"floor_steps_per_s={floor.steps_per_s:.1f} ratio={ratio:.2f} "
          f"p95_ratio={p95_ratio:.2f} events_per_action={per_action:.1f} "
          f"single_p50_ms={single:.1f} floor_single_p50_ms={floor_single:.1f}")
    wrong = [w for phase in (floor_one, bihuan_one, *concurrent) for w in phase.wrong]
    for line in wrong[:20]:
        print(f"WRONG STAGE: {line}")
    return 1 if wrong else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--single-cases", type=int, default=20)
    # Ten: the machine's speed drifts within a minute or two; with four rounds, runs of the same
    # code gave ratios from 0.68 to 0.82, with ten 0.72 and 0.73.
    parser.add_argument("--rounds", type=int, default=10,
                        help="the concurrent phases take turns in this many rounds (give each "
                             "round several times --clients cases)")
    parser.add_argument("--sequence", action="store_true",
                        help="also list the history of one ordinary case, with times")
    parser.add_argument("--shaped", action="store_true",
                        help="also run the floor carrying a real case's data (bench/floor.py), "
                             "in the same rounds")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="sample the worker and the API with py-spy during the concurrent "
                             "bihuan phase; collapsed stacks go to DIR")
    args = parser.parse_args()
    if not 1 <= args.rounds <= args.cases:
        parser.error("--rounds must be at least 1 and at most --cases")
    if args.shaped and args.single_cases < 1:
        parser.error("--shaped takes its case's data from the one-client phase: "
                     "--single-cases must be at least 1")
    exit_with(lambda: main(args.cases, args.clients, args.single_cases, args.sequence,
                           args.profile, args.rounds, args.shaped))
