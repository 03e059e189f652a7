"""The 12345 contract end to end on a real dev server and ledger: work orders in (mapped,
unmapped, redelivered, merged as 并单), bad ones refused, and the caller's follow-up result
feeding the 评价 step or stored and answered 409."""

import asyncio
import random
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from domain import lifecycle
from domain.models import LedgerEntry, Location
from ledger.outbox import Outbox
from ledger.tables import CaseRow, HotlineTicketRow
from notifications.relay import OutboxRelay
from tests.api_client import (DISPATCHER, HOTLINE, INSPECTOR, OFFICER, act, get, history,
                              ticket)
from tests.factories import bearer, intake, policy
from tests.test_outbox import FAST
from tests.webhook_receiver import Platform

# Lhasa's old town; each test picks a spot of its own far from the others.
LHASA_LAT, LHASA_LNG = 29.6535, 91.1335
METRE_LAT = 1 / 111_195


def spot() -> tuple[float, float]:
    return (LHASA_LAT + random.uniform(-0.2, 0.2), LHASA_LNG + random.uniform(-0.2, 0.2))


def work_order(code: str = "0301", at: tuple[float, float] | None = None,
               **overrides) -> dict:
    lat, lng = at or spot()
    body = {"ticket_no": ticket(), "call_time": "2026-11-30T09:12:00+08:00",
            "caller": {"name": "王女士", "phone": "13800000000"}, "appeal_type": "投诉",
            "content": "吉日巷口垃圾堆积三天无人清运，气味很大",
            "address": {"district": "城关区", "street": "吉日街道", "address": "吉日巷12号旁",
                        "lat": lat, "lng": lng},
            "category_code": code, "category_name": "垃圾清运不及时", "urgency": "一般"}
    body.update(overrides)
    return body


async def deliver(api, body: dict, who: dict = HOTLINE, expect: int | None = None):
    response = await api.post("/hotline/work-orders", json=body, headers=bearer(who))
    if expect is not None:
        assert response.status_code == expect, response.text
    return response


async def projected(ledger, case_id: str) -> None:
    """Wait until the worker has written the case's opening to the ledger, where repeats are
    looked for (a few milliseconds after the case is opened)."""
    for _ in range(200):
        if ledger.case(case_id) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{case_id} never reached the ledger")


def cases_for_ticket(ledger, ticket_no: str) -> int:
    with Session(ledger.engine) as session:
        return session.scalar(select(func.count()).select_from(CaseRow)
                              .where(CaseRow.external_id == ticket_no))


async def test_a_mapped_work_order_opens_a_routed_case_and_a_redelivery_finds_it(api, ledger):
    order = work_order("0301")
    first = (await deliver(api, order, expect=201)).json()
    case = first["case"]
    assert first["outcome"] == "opened" and first["case_id"] == f"hotline-{order['ticket_no']}"
    assert (case["stage"], case["team"], case["policy"]["category"]) == \
        ("assigned", "环境卫生", "exposed_garbage")
    assert case["source"] == "hotline" and case["external_id"] == order["ticket_no"]
    assert datetime.fromisoformat(case["received_at"]) == \
        datetime(2026, 11, 30, 1, 12, tzinfo=timezone.utc)
    assert case["description"] == "【12345投诉】吉日巷口垃圾堆积三天无人清运，气味很大"
    assert case["reporter"] == {"name": "王女士", "phone": "13800000000", "masked": False}

    for _ in range(2):
        again = (await deliver(api, order, expect=200)).json()
        assert (again["outcome"], again["case_id"]) == ("existing", first["case_id"])
    assert cases_for_ticket(ledger, order["ticket_no"]) == 1


async def test_an_unmapped_code_waits_in_reported_for_the_dispatcher(api):
    order = work_order("9907", category_name="其他城市管理问题", urgency="2")
    received = (await deliver(api, order, expect=201)).json()
    case = received["case"]
    assert (case["stage"], case["team"], case["policy"]) == ("reported", None, None)
    assert case["category_hint"] == "12345:9907 其他城市管理问题"
    assert case["urgency"] == "urgent"
    assigned = await act(api, received["case_id"], "assign",
                         {"team": "环境卫生", "category": "exposed_garbage"}, DISPATCHER)
    assert assigned["to_stage"] == "assigned"
    long_name = (await deliver(api, work_order("9908", category_name="其" * 100),
                               expect=201)).json()
    assert long_name["case"]["category_hint"] == f"12345:9908 {'其' * 89}"


async def test_a_ticket_for_the_same_spot_is_merged_into_the_open_case(api, ledger):
    lat, lng = spot()
    first = (await deliver(api, work_order("0302", at=(lat, lng)), expect=201)).json()
    case_id = first["case_id"]
    await projected(ledger, case_id)
    # 40 m north: the same overflowing bin, reported by a second caller.
    repeat = work_order("0302", at=(lat + 40 * METRE_LAT, lng),
                        caller={"name": "次仁先生", "phone": "13900000001"},
                        content="垃圾桶满了没人清")
    merged = (await deliver(api, repeat, expect=200)).json()
    assert (merged["outcome"], merged["case_id"]) == ("merged", case_id)
    assert cases_for_ticket(ledger, repeat["ticket_no"]) == 0
    again = (await deliver(api, repeat, expect=200)).json()
    assert (again["outcome"], again["case_id"]) == ("merged", case_id)

    # The merge reaches the case as a signal; its history entry follows a moment later.
    for _ in range(200):
        events = await history(api, case_id)
        supplements = [e for e in events if e["action"] == "supplement"]
        if supplements:
            break
        await asyncio.sleep(0.02)
    assert len(supplements) == 1, "a redelivered merge is recorded once"
    assert repeat["ticket_no"] in supplements[0]["note"]
    assert "次仁" not in supplements[0]["note"] and "139" not in supplements[0]["note"]
    assert [e["to_stage"] for e in events] == ["assigned", "assigned"], "no second rectification"

    view = (await get(api, f"/hotline/work-orders/{repeat['ticket_no']}", HOTLINE)).json()
    assert (view["case_id"], view["merged"]) == (case_id, True)
    assert [(c["ticket_no"], c["phone"], c["merged"]) for c in view["follow_up_list"]] == [
        (first["ticket_no"], "13800000000", False), (repeat["ticket_no"], "13900000001", True)]

    # Further than the distance, or another category: a case of its own.
    far = await deliver(api, work_order("0302", at=(lat + 500 * METRE_LAT, lng)), expect=201)
    other = await deliver(api, work_order("0301", at=(lat, lng)), expect=201)
    assert case_id not in (far.json()["case_id"], other.json()["case_id"])


async def test_without_coordinates_the_same_community_is_the_same_spot(api, ledger):
    def order() -> dict:
        return work_order("0304", content="公厕无人打扫", address={
            "district": "城关区", "street": "八廓街道", "community": "鲁固社区",
            "address": "鲁固社区公厕"})
    first = (await deliver(api, order(), expect=201)).json()
    await projected(ledger, first["case_id"])
    merged = (await deliver(api, order(), expect=200)).json()
    assert (merged["outcome"], merged["case_id"]) == ("merged", first["case_id"])


async def test_a_closed_case_takes_no_merge(api, ledger):
    lat, lng = spot()
    first = (await deliver(api, work_order("0501", at=(lat, lng)), expect=201)).json()
    await act(api, first["case_id"], "reject", {"reason": "重复上报"}, DISPATCHER)
    await projected(ledger, first["case_id"])
    second = (await deliver(api, work_order("0501", at=(lat, lng)), expect=201)).json()
    assert second["outcome"] == "opened" and second["case_id"] != first["case_id"]


async def test_bad_work_orders_are_refused_and_change_nothing(api, ledger):
    cases = [
        (work_order(urgency="十万火急"), 422, "unknown_urgency"),
        (work_order(address={"district": "不存在区", "address": "某处"}), 422,
         "unknown_location"),
        ({**work_order(), "content": ""}, 422, "invalid_input"),
        ({**work_order(), "call_time": "2026-11-30T09:12:00"}, 422, "invalid_input"),
        ({**work_order(), "ticket_no": "工单 1"}, 422, "invalid_input"),
        ({**work_order(), "surprise": 1}, 422, "invalid_input"),
    ]
    for body, status, code in cases:
        response = await deliver(api, body)
        assert (response.status_code, response.json()["code"]) == (status, code), body
        assert response.json()["message"]
        assert cases_for_ticket(ledger, body["ticket_no"]) == 0
    officer = await deliver(api, work_order(), who=OFFICER)
    assert (officer.status_code, officer.json()["code"]) == (403, "role_not_allowed")
    with Session(ledger.engine) as session:
        stored = session.scalar(select(func.count()).select_from(HotlineTicketRow).where(
            HotlineTicketRow.ticket_no.in_([b["ticket_no"] for b, _, _ in cases])))
    assert stored == 0
    missing = await get(api, f"/hotline/work-orders/{ticket()}", HOTLINE)
    assert (missing.status_code, missing.json()["code"]) == (404, "ticket_not_found")


# ---- 回访 ---------------------------------------------------------------------------------------

async def to_evaluating(api, case_id: str) -> None:
    await act(api, case_id, "accept", {}, OFFICER)
    await act(api, case_id, "submit_rectification", {"report": "已清运"}, OFFICER)
    await act(api, case_id, "verify", {"passed": True}, INSPECTOR)


async def follow_up(api, ticket_no: str, body: dict, key: str | None = None):
    headers = {**bearer(HOTLINE), "Idempotency-Key": key or uuid.uuid4().hex}
    return await api.post(f"/hotline/work-orders/{ticket_no}/follow-up", json=body,
                          headers=headers)


async def test_the_follow_up_result_feeds_the_evaluation_once(api):
    order = work_order()
    case_id = (await deliver(api, order, expect=201)).json()["case_id"]
    early = await follow_up(api, order["ticket_no"], {"rating": "满意", "resolved": True})
    assert (early.status_code, early.json()["code"]) == (409, "not_awaiting_follow_up")
    assert early.json()["details"]["stage"] == "assigned"
    assert "待签收" in early.json()["message"]

    await to_evaluating(api, case_id)
    result = {"rating": "满意", "resolved": True, "comment": "已经清理干净",
              "called_at": datetime.now(timezone.utc).isoformat()}
    rated = await follow_up(api, order["ticket_no"], result, key="hf-1")
    assert rated.status_code == 200, rated.text
    assert (rated.json()["action"], rated.json()["to_stage"]) == ("evaluate", "recheck_pending")
    assert rated.json()["case"]["rating"] == "satisfied"
    resent = await follow_up(api, order["ticket_no"], result, key="hf-1")
    assert (resent.status_code, resent.json()["seq"]) == (200, rated.json()["seq"])

    late = await follow_up(api, order["ticket_no"], {"rating": "不满意", "resolved": False},
                           key="hf-2")
    assert (late.status_code, late.json()["code"]) == (409, "not_awaiting_follow_up")
    events = await history(api, case_id)
    evaluations = [e for e in events if e["action"] == "evaluate"]
    assert len(evaluations) == 1
    assert evaluations[0]["note"] == "12345回访：已解决。已经清理干净"

    view = (await get(api, f"/hotline/work-orders/{order['ticket_no']}", HOTLINE)).json()
    assert [(r["rating"], r["outcome"]) for r in view["follow_up_results"]] == [
        ("satisfied", "not_awaiting"), ("satisfied", "evaluated"),
        ("unsatisfied", "not_awaiting")]


async def test_an_unresolved_unsatisfied_result_sends_the_case_to_community_review(api):
    order = work_order()
    case_id = (await deliver(api, order, expect=201)).json()["case_id"]
    await to_evaluating(api, case_id)
    answer = await follow_up(api, order["ticket_no"], {"rating": "very_unsatisfied",
                                                       "resolved": False})
    assert answer.json()["to_stage"] == "reviewing"
    bad = await follow_up(api, order["ticket_no"], {"rating": "还行", "resolved": True})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_input")


async def test_the_platform_hears_of_each_step_of_a_real_case_with_every_merged_ticket(
        api, ledger, receiver, sender):
    lat, lng = spot()
    order = work_order("0301", at=(lat, lng))
    case_id = (await deliver(api, order, expect=201)).json()["case_id"]
    await projected(ledger, case_id)
    repeat = work_order("0301", at=(lat, lng), caller={"phone": "13900000002"})
    assert (await deliver(api, repeat, expect=200)).json()["outcome"] == "merged"
    await to_evaluating(api, case_id)
    rated = await follow_up(api, order["ticket_no"], {"rating": "基本满意", "resolved": True})
    assert rated.json()["to_stage"] == "recheck_pending"

    relay = OutboxRelay(ledger.engine, [receiver.url], sender, retry=FAST,
                        outbox=Outbox(ledger.engine, audiences=["hotline"]))
    await relay.drain_once()
    heard = Platform(receiver).callbacks(case_id)
    assert [(b["kind"], b["data"]["tickets"]) for b in heard] == [
        (f"hotline_{kind}", [order["ticket_no"], repeat["ticket_no"]])
        for kind in ("accepted", "rectified", "verified")]
    assert all(b["data"]["stage"] == stage for b, stage in
               zip(heard, ("rectifying", "verifying", "evaluating")))


async def test_a_match_whose_workflow_is_gone_passes_the_ticket_to_the_next(api, ledger,
                                                                           catalog):
    lat, lng = spot()
    # Older and in the ledger, but Temporal no longer has it (past retention, say).
    gone = intake(policy(catalog, "construction_dust"), calendar=catalog.calendar,
                  opened_at=datetime.now(timezone.utc) - timedelta(days=3),
                  location=Location(district="城关区", street="吉日街道", address="工地旁",
                                    lat=lat, lng=lng))
    state, event = lifecycle.open_case(gone)
    ledger.record(LedgerEntry(event=event, state=state))
    live = (await deliver(api, work_order("0305", at=(lat, lng)), expect=201)).json()
    assert live["outcome"] == "opened", "the ghost could not take it"
    await projected(ledger, live["case_id"])
    repeat = (await deliver(api, work_order("0305", at=(lat, lng)), expect=200)).json()
    assert (repeat["outcome"], repeat["case_id"]) == ("merged", live["case_id"])


async def test_a_ticket_whose_case_was_opened_but_not_stored_is_found_again(api):
    # As if the API stopped between opening the case and storing its ticket.
    order = work_order()
    opened = await api.post("/cases", headers=bearer(HOTLINE), json={
        "source": "hotline", "external_id": order["ticket_no"], "category": "暴露垃圾",
        "description": order["content"], "location": order["address"]})
    assert opened.status_code == 201
    again = (await deliver(api, order, expect=200)).json()
    assert (again["outcome"], again["case_id"]) == ("existing", opened.json()["case_id"])
    view = await get(api, f"/hotline/work-orders/{order['ticket_no']}", HOTLINE)
    assert view.json()["follow_up_list"][0]["phone"] == "13800000000"
