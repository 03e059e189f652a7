"""Realistic inputs for tests: actors, intakes and commands."""

import uuid
from datetime import datetime, timezone
from typing import Any

from api.auth import mint_token
from config.catalog import Catalog
from config.settings import Settings
from domain.models import (Actor, Audience, CaseIntake, CasePolicy, Command, Location, Notification,
                           Reporter, Source, Urgency)
from domain.roles import Role

HOTLINE = Actor(id="hotline-12345", name="12345热线平台", role=Role.HOTLINE)
DISPATCHER = Actor(id="d001", name="次仁", role=Role.DISPATCHER)
OFFICER = Actor(id="o017", name="扎西", role=Role.OFFICER, team="环境卫生")
OTHER_OFFICER = Actor(id="o018", name="格桑", role=Role.OFFICER, team="环境卫生")
MUNICIPAL_OFFICER = Actor(id="o101", name="平措", role=Role.OFFICER, team="市政设施")
INSPECTOR = Actor(id="i003", name="卓玛", role=Role.INSPECTOR)
COMMUNITY = Actor(id="c021", name="央金", role=Role.COMMUNITY, district="城关区",
                  street="八廓街道")
SUPERVISOR = Actor(id="s001", name="领导小组办公室", role=Role.SUPERVISOR)


def policy(catalog: Catalog, category: str = "exposed_garbage",
           urgency: Urgency = Urgency.NORMAL) -> CasePolicy:
    return catalog.case_policy(catalog.category(category), urgency.value)


def intake(case_policy: CasePolicy | None, case_id: str | None = None, **overrides) -> CaseIntake:
    case_id = case_id or f"hotline-{uuid.uuid4().hex[:12]}"
    fields = dict(
        case_id=case_id, request_id=case_id, opened_at=datetime.now(timezone.utc),
        source=Source.HOTLINE,
        external_id=case_id.removeprefix("hotline-"),
        description="吉日巷口垃圾堆积三天无人清运",
        location=Location(district="城关区", street="八廓街道", address="吉日巷12号旁"),
        reporter=Reporter(name="王女士", phone="13800000000"), actor=HOTLINE,
        policy=case_policy)
    fields.update(overrides)
    return CaseIntake(**fields)


def cmd(kind: str, actor: Actor, request_id: str | None = None, **fields) -> Command:
    return Command(request_id=request_id or uuid.uuid4().hex, actor=actor,
                   payload={"kind": kind, **fields})


def bearer(who: Actor | dict, settings: Settings | None = None) -> dict[str, str]:
    """The Authorization header of a token for `who`, signed with the test settings' key."""
    actor = who if isinstance(who, Actor) else Actor(**who)
    return {"Authorization": f"Bearer {mint_token(settings or Settings(), actor)}"}


def notification(case_id: str, kind: str = "reminder", **overrides: Any) -> Notification:
    """A 催办 to the case's team, as a workflow would attach it to a ledger entry."""
    fields: dict[str, Any] = dict(
        event_id=f"{case_id}:{kind}:{uuid.uuid4().hex[:8]}", kind=kind, case_id=case_id,
        audience=Audience.TEAM, recipient="环境卫生", title=f"催办：{case_id}（城关区八廓街道）",
        body="签收时限将于2026-11-20 17:00到期，请尽快签收。",
        occurred_at=datetime.now(timezone.utc), data={"step": "accept"})
    fields.update(overrides)
    return Notification(**fields)
