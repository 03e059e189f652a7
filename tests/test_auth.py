"""Who may do what: verified tokens, roles scoped to teams and places, personal data masked,
refusals logged and counted, hostile input refused."""

import time
from datetime import timedelta

import jwt
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.auth import mint_token, verify_token
from api.errors import ApiError
from config.settings import DEV_SIGNING_KEY, Settings
from domain.models import Actor
from tests.api_client import (DISPATCHER, HOTLINE, INSPECTOR, OFFICER, SUPERVISOR, act, get,
                              new_case, open_case, post_case)
from tests.factories import bearer

SETTINGS = Settings()
COMMUNITY_HERE = {"id": "c021", "name": "央金", "role": "community", "district": "城关区",
                  "street": "八廓街道"}
COMMUNITY_ELSEWHERE = {"id": "c099", "name": "尼珍", "role": "community",
                       "district": "堆龙德庆区"}
PHONE, NAME = "13800000000", "王女士"


def token(claims: dict, key: str = DEV_SIGNING_KEY, algorithm: str = "HS256") -> dict:
    return {"Authorization": f"Bearer {jwt.encode(claims, key, algorithm=algorithm)}"}


def fresh(**claims) -> dict:
    return {"sub": "u1", "role": "supervisor", "exp": 4102444800, **claims}  # 2100-01-01


@pytest.mark.parametrize("headers, code", [
    ({}, "missing_token"),
    ({"Authorization": "Token abc"}, "malformed_token"),
    ({"Authorization": "Bearer"}, "malformed_token"),
    ({"Authorization": "Bearer not-a-jwt"}, "malformed_token"),
    (token(fresh(exp=1)), "token_expired"),
    (token(fresh(), key="someone-elses-key-of-32-bytes-or-more"), "invalid_signature"),
    (token(fresh(), key=None, algorithm="none"), "unsigned_token"),
    (token({"role": "supervisor", "exp": 4102444800}), "invalid_claims"),
    (token({"sub": "u1", "role": "supervisor"}), "invalid_claims"),
    (token(fresh(role="mayor")), "invalid_claims"),
    (token(fresh(role="system")), "invalid_claims"),
    (token(fresh(role="officer")), "invalid_claims"),            # an officer needs a team
    (token(fresh(role="community")), "invalid_claims"),          # community staff need a place
])
async def test_requests_without_a_valid_token_are_401(api, headers, code):
    for method, path in (("GET", "/cases/hotline-x"), ("POST", "/cases"),
                         ("GET", "/catalog/teams")):
        response = await api.request(method, path, headers=headers, json=new_case())
        assert response.status_code == 401, (path, response.text)
        assert response.json()["code"] == code
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_health_and_docs_need_no_token(api):
    for path in ("/healthz", "/docs", "/openapi.json"):
        assert (await api.get(path)).status_code == 200


def test_rs256_tokens_verify_with_the_public_key():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings = Settings(jwt_algorithm="RS256", jwt_public_key=public_pem,
                        jwt_private_key=private_pem)
    officer = Actor(id="o017", name="扎西", role="officer", team="环境卫生")
    assert verify_token(settings, mint_token(settings, officer)) == officer
    with pytest.raises(ApiError) as refused:  # an HS256 token signed with the public key
        verify_token(settings, jwt.encode(fresh(), "x" * 32, algorithm="HS256"))
    assert refused.value.status == 401


def test_outside_development_the_default_signing_key_is_refused():
    for environment in ("production", "test"):
        with pytest.raises(ValueError, match="BIHUAN_JWT_SECRET"):
            Settings(environment=environment)
    with pytest.raises(ValueError, match="32"):
        Settings(environment="production", jwt_secret="short")
    assert Settings(environment="production", jwt_secret="k" * 32).environment == "production"


def test_tokens_expire():
    actor = Actor(id="s1", role="supervisor")
    with pytest.raises(ApiError) as refused:
        verify_token(SETTINGS, mint_token(SETTINGS, actor, ttl=timedelta(seconds=-1)))
    assert refused.value.code == "token_expired"


def test_a_token_verified_before_still_expires_and_holds_only_under_its_own_key():
    actor = Actor(id="s1", role="supervisor")
    token = mint_token(SETTINGS, actor, ttl=timedelta(seconds=2))
    assert verify_token(SETTINGS, token) == actor
    assert verify_token(SETTINGS, token) == actor  # found again
    other = Settings(jwt_secret="another-secret-of-at-least-32-bytes!")
    with pytest.raises(ApiError) as refused:
        verify_token(other, token)
    assert refused.value.code == "invalid_signature"
    time.sleep(3)
    with pytest.raises(ApiError) as refused:
        verify_token(SETTINGS, token)
    assert refused.value.code == "token_expired"


async def test_the_actor_of_every_step_is_the_token_holder(api):
    case = await open_case(api)
    await act(api, case["case_id"], "accept", {"note": "签收"}, OFFICER)
    events = (await get(api, f"/cases/{case['case_id']}/history")).json()["events"]
    assert [(e["actor"]["id"], e["actor"]["role"]) for e in events] == [
        ("hotline-12345", "hotline"), ("o017", "officer")]
    assert events[1]["actor"]["team"] == "环境卫生"


async def test_an_officer_sees_and_acts_only_on_their_teams_cases(api):
    case_id = (await open_case(api))["case_id"]
    municipal = {**OFFICER, "id": "o101", "team": "市政设施"}
    refused = await get(api, f"/cases/{case_id}", municipal)
    assert refused.status_code == 403 and refused.json()["code"] == "not_your_team"
    assert "市政设施" in refused.json()["message"]
    await act(api, case_id, "accept", {}, municipal, expect=403)
    assert (await get(api, f"/cases/{case_id}/history", municipal)).status_code == 403
    await act(api, case_id, "accept", {}, OFFICER)
    # Once returned to the dispatcher the case is no longer the team's.
    case_id = (await open_case(api))["case_id"]
    returned = await act(api, case_id, "return", {"reason": "不属于本专班"}, OFFICER, key="ret-1")
    assert (await get(api, f"/cases/{case_id}", OFFICER)).status_code == 403
    # ...but the officer's retry of that very request still gets its first answer.
    retried = await act(api, case_id, "return", {"reason": "不属于本专班"}, OFFICER, key="ret-1")
    assert retried == returned
    other = await act(api, case_id, "return", {"reason": "再退"}, OFFICER, key="ret-2",
                      expect=403)
    assert other["code"] == "not_your_team"


async def reviewing_case(api) -> str:
    case_id = (await open_case(api))["case_id"]
    await act(api, case_id, "accept", {}, OFFICER)
    await act(api, case_id, "submit_rectification", {"report": "已清运"}, OFFICER)
    await act(api, case_id, "verify", {"passed": True}, INSPECTOR)
    await act(api, case_id, "evaluate", {"rating": "不满意"}, HOTLINE)
    return case_id


async def test_community_staff_review_only_cases_in_their_area(api):
    case_id = await reviewing_case(api)
    refused = await act(api, case_id, "review", {"decision": "uphold", "note": "复核"},
                        COMMUNITY_ELSEWHERE, expect=403)
    assert refused["code"] == "not_your_area"
    other_street = {**COMMUNITY_HERE, "id": "c022", "street": "吉日街道"}
    assert (await act(api, case_id, "review", {"decision": "uphold", "note": "复核"},
                      other_street, expect=403))["code"] == "not_your_area"
    result = await act(api, case_id, "review", {"decision": "uphold", "note": "已复核"},
                       COMMUNITY_HERE)
    assert result["to_stage"] == "recheck_pending"


async def test_an_action_on_a_case_the_actor_may_not_read_is_refused_and_changes_nothing(api):
    # The rating belongs to the hotline identity that opened the case, no other.
    case_id = (await open_case(api))["case_id"]
    await act(api, case_id, "accept", {}, OFFICER)
    await act(api, case_id, "submit_rectification", {"report": "已清运"}, OFFICER)
    await act(api, case_id, "verify", {"passed": True}, INSPECTOR)
    other_hotline = {**HOTLINE, "id": "hotline-other"}
    refused = await act(api, case_id, "evaluate", {"rating": "满意"}, other_hotline, expect=403)
    assert refused["code"] == "not_your_case" and "hotline-other" in refused["message"]
    assert (await get(api, f"/cases/{case_id}")).json()["stage"] == "evaluating"
    missing = await act(api, "hotline-nowhere", "evaluate", {"rating": "满意"}, HOTLINE,
                        expect=404)
    assert missing["code"] == "case_not_found"


async def test_the_hotline_and_reporters_read_only_the_cases_they_opened(api):
    case_id = (await open_case(api))["case_id"]
    other_hotline = {**HOTLINE, "id": "hotline-other"}
    assert (await get(api, f"/cases/{case_id}", HOTLINE)).status_code == 200
    refused = await get(api, f"/cases/{case_id}", other_hotline)
    assert refused.status_code == 403 and refused.json()["code"] == "not_your_case"
    grid = {"id": "g1", "name": "拉姆", "role": "reporter"}
    mine = (await open_case(api, who=grid, source="grid"))["case_id"]
    assert (await get(api, f"/cases/{mine}", grid)).status_code == 200
    assert (await get(api, f"/cases/{case_id}", grid)).status_code == 403
    for who in (SUPERVISOR, DISPATCHER, INSPECTOR, {"id": "a1", "role": "admin"}):
        assert (await get(api, f"/cases/{case_id}", who)).status_code == 200, who


async def test_personal_data_is_masked_for_roles_that_do_not_need_it(api):
    case_id = (await open_case(api, reporter={"name": NAME, "phone": PHONE}))["case_id"]
    for who in (HOTLINE, DISPATCHER, SUPERVISOR):
        reporter = (await get(api, f"/cases/{case_id}", who)).json()["reporter"]
        assert reporter == {"name": NAME, "phone": PHONE, "masked": False}
    for who in (OFFICER, INSPECTOR, COMMUNITY_HERE):
        view = (await get(api, f"/cases/{case_id}", who)).json()
        assert view["reporter"] == {"name": "王**", "phone": "138****0000", "masked": True}
        assert PHONE not in str(view) and NAME not in str(view)
    result = await act(api, case_id, "accept", {}, OFFICER)
    assert PHONE not in str(result) and result["case"]["reporter"]["masked"]
    history = (await get(api, f"/cases/{case_id}/history", OFFICER)).text
    assert PHONE not in history and NAME not in history


async def test_refusals_are_logged_and_counted_without_personal_data(api):
    counter = api._transport.app.state.refusals
    before = counter[(403, "not_your_team")]
    with structlog.testing.capture_logs() as logs:
        case = await open_case(api, reporter={"name": NAME, "phone": PHONE})
        await act(api, case["case_id"], "accept", {}, {**OFFICER, "team": "道路交通"},
                  expect=403)
        await act(api, case["case_id"], "verify", {"passed": True}, INSPECTOR, expect=409)
        await api.get(f"/cases/{case['case_id']}")
    assert counter[(403, "not_your_team")] == before + 1
    refused = [entry for entry in logs if entry["event"] == "refused"]
    assert [(e["status"], e["code"]) for e in refused] == [
        (403, "not_your_team"), (409, "stage_conflict"), (401, "missing_token")]
    assert refused[0]["case_id"] == case["case_id"] and refused[0]["actor_id"] == "o017"
    assert refused[0]["role"] == "officer" and refused[0]["reason"]
    assert PHONE not in str(logs) and NAME not in str(logs)


async def test_hostile_input_is_refused_and_changes_nothing(api):
    huge = await post_case(api, new_case(description="垃" * 40000))
    assert huge.status_code == 413 and huge.json()["code"] == "body_too_large"
    too_long = await post_case(api, new_case(description="垃" * 4001))
    assert too_long.status_code == 422
    unknown = await post_case(api, new_case(priority="highest"))
    assert unknown.status_code == 422 and unknown.json()["details"]["errors"][0]["field"] == \
        "priority"
    naive = await post_case(api, new_case(received_at="2026-11-22T10:00:00"))
    assert naive.status_code == 422
    assert (await post_case(api, new_case(received_at="2026-11-22T10:00:00+08:00"))) \
        .status_code == 201
    many = await post_case(api, new_case(attachments=[f"https://img.example.cn/{i}.jpg"
                                                      for i in range(21)]))
    assert many.status_code == 422
    scheme = await post_case(api, new_case(attachments=["javascript:alert(1)"]))
    assert scheme.status_code == 422
    bad_enum = await post_case(api, new_case(urgency="yesterday"))
    assert bad_enum.status_code == 422
    assert (await api.get("/cases/nope/actions", headers=bearer(SUPERVISOR))).json()["code"] \
        == "not_found"
