"""Idle cases are cheap: many open cases waiting, a worker of bounded memory, and a sample of
them still completing afterwards.

Starts its own dev server, worker and API (bench/system.py) with the worker's workflow cache
bounded (BIHUAN_WORKER_MAX_CACHED_WORKFLOWS), opens N cases over HTTP and leaves them waiting:
most assigned to their team (a 签收 deadline pending), a share taken on to recheck_pending (the
category's 30-day 回头看 timer pending). It prints the worker's resident memory, current and
peak, then restarts the worker (its cache empty, so every case must replay from its history)
and drives a random sample of the waiting cases to closed. Exits non-zero if a sampled case
ends in the wrong stage or the worker's peak memory passes the limit.

Run: .venv/bin/python bench/idle_cases.py [--cases 20000] [--clients 50] [--cache 1000]
"""

import argparse
import asyncio
import random
import time
from datetime import datetime, timedelta

from domain.models import Actor
from domain.roles import Role
from lifecycle import (HOTLINE, INSPECTOR, RECTIFIED, SUPERVISOR, Api, Phase, clients_drive,
                       http_session, mint_tokens, new_case, percentile)
from runtime.scripts import exit_with
from system import System, peak_rss_mib, rss_mib, running_system, wait_healthy

# 路灯不亮: no recheck interval of its own, so the catalogue's default of 30 days.
CATEGORY = "路灯不亮"
OFFICER = Actor(id="o101", name="平措", role=Role.OFFICER, team="市政设施")
RECHECK_INTERVAL = timedelta(days=30)


async def to_recheck_pending(api: Api, case_id: str) -> None:
    await api.act(case_id, "accept", {}, OFFICER)
    await api.act(case_id, "submit_rectification", RECTIFIED, OFFICER)
    await api.act(case_id, "verify", {"passed": True, "note": "路灯已修复"}, INSPECTOR)
    await api.act(case_id, "evaluate", {"rating": "满意"}, HOTLINE)


async def open_cases(system: System, phase: Phase, cases: int, recheck_every: int) -> None:
    async with http_session(system, phase.clients) as http:
        api = Api(http, phase, check_ledger=False)

        async def one(i: int) -> None:
            case_id = (await api.post("open", "/cases", new_case(CATEGORY), HOTLINE))["case_id"]
            phase.ids[i] = case_id
            if i % recheck_every == 0:
                await to_recheck_pending(api, case_id)

        await clients_drive(phase, range(cases), one)


async def finish_sample(system: System, phase: Phase, sample: list[int],
                        recheck_every: int) -> None:
    async with http_session(system, 1) as http:
        api = Api(http, phase, check_ledger=False)

        async def one(i: int) -> None:
            case_id = phase.ids[i]
            expected = "recheck_pending" if i % recheck_every == 0 else "assigned"
            case = await api.case(case_id)
            if case["stage"] != expected:
                phase.wrong.append(f"{case_id} was {case['stage']} while waiting, not {expected}")
                return
            if expected == "recheck_pending":
                due = datetime.fromisoformat(case["recheck_due_at"])
                waited = due - datetime.fromisoformat(case["stage_times"]["recheck_pending"])
                if abs(waited - RECHECK_INTERVAL) > timedelta(minutes=1):
                    phase.wrong.append(f"{case_id}: the 回头看 falls due after {waited}")
            if expected == "assigned":
                await to_recheck_pending(api, case_id)
            await api.act(case_id, "bring_recheck_forward", {"note": "抽查"}, SUPERVISOR)
            await api.act(case_id, "recheck", {"result": "consolidated", "note": "未反弹"},
                          INSPECTOR)
            final = await api.stage(case_id)
            if final != "closed":
                phase.wrong.append(f"{case_id} ended {final}")

        phase.clients = min(10, len(sample))
        await clients_drive(phase, sample, one)


def main(args: argparse.Namespace) -> int:
    env = {"BIHUAN_WORKER_MAX_CACHED_WORKFLOWS": str(args.cache)}
    with running_system(env) as system:
        mint_tokens(system, HOTLINE, OFFICER, INSPECTOR, SUPERVISOR)
        opened = Phase("open and leave waiting", args.clients)
        asyncio.run(open_cases(system, opened, args.cases, args.recheck_every))
        worker = system.pid("worker")
        figures = {"worker_rss": rss_mib(worker), "worker_peak": peak_rss_mib(worker),
                   "api_peak": peak_rss_mib(system.pid("api")),
                   "server_rss": rss_mib(system.pid("temporal"))}
        # A new worker has nothing cached: every sampled case replays from its history.
        system.restart_worker()
        wait_healthy(system)
        sample = sorted(random.Random(args.seed).sample(range(args.cases),
                                                        min(args.sample, args.cases)))
        finished = Phase("random sample driven to closed, after a worker restart", 1)
        finished.ids = opened.ids
        started = time.perf_counter()
        asyncio.run(finish_sample(system, finished, sample, args.recheck_every))
        finished.elapsed = time.perf_counter() - started
        figures["new_worker_peak"] = peak_rss_mib(system.pid("worker"))

    waiting = args.cases // args.recheck_every + (args.cases % args.recheck_every > 0)
    print(f"\n== {args.cases} cases opened over HTTP by {args.clients} clients in "
          f"{opened.elapsed:.1f} s ({args.cases / opened.elapsed:.1f} cases/s); "
          f"{args.cases - waiting} left assigned, {waiting} left recheck_pending (30-day 回头看)")
    opens = opened.latencies["open"]
    print(f"   open p50 {percentile(opens, .5) * 1000:.1f} ms, "
          f"p95 {percentile(opens, .95) * 1000:.1f} ms")
    print(f"   worker workflow cache: {args.cache} cases")
    print(f"   worker RSS now {figures['worker_rss']:.0f} MiB, peak {figures['worker_peak']:.0f} "
          f"MiB (limit {args.rss_limit_mib} MiB); API peak {figures['api_peak']:.0f} MiB; "
          f"dev server RSS {figures['server_rss']:.0f} MiB")
    print(f"== {len(sample)} random waiting cases driven to closed after a worker restart in "
          f"{finished.elapsed:.1f} s; new worker peak {figures['new_worker_peak']:.0f} MiB")
    actions = finished.actions()
    print(f"   action p50 {percentile(actions, .5) * 1000:.1f} ms, "
          f"p95 {percentile(actions, .95) * 1000:.1f} ms (the first action of a case replays it)")
    wrong = opened.wrong + finished.wrong
    for line in wrong[:20]:
        print(f"WRONG STAGE: {line}")
    over = figures["worker_peak"] > args.rss_limit_mib
    if over:
        print(f"MISSED: the worker's peak RSS passed {args.rss_limit_mib} MiB")
    print(f"idle_cases cases={args.cases} cache={args.cache} "
          f"worker_rss_mib={figures['worker_rss']:.0f} worker_peak_mib={figures['worker_peak']:.0f} "
          f"sample={len(sample)} sample_closed={len(sample) - len(finished.wrong)}")
    return 1 if wrong or over else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--cache", type=int, default=500,
                        help="the worker's max_cached_workflows")
    parser.add_argument("--recheck-every", type=int, default=4,
                        help="every n-th case is taken on to recheck_pending")
    parser.add_argument("--sample", type=int, default=30)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--rss-limit-mib", type=int, default=400)
    args = parser.parse_args()
    exit_with(lambda: main(args))
