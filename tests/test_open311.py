"""Open311 GeoReport v2 against a running server (uvicorn, a worker, the dev server, a ledger of
its own): the `georeport` client from PyPI reads services and requests in JSON and XML (it has
no call to open one, so requests are opened with httpx, form-encoded as the standard says), and
every answer is checked against JSON schemas written from the GeoReport v2 specification."""

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import jsonschema
import pytest
from georeport import GeoReport

from api.main import create_app
from api.service import CaseService
from config.settings import Settings
from runtime.worker import build_worker
from tests.api_client import DISPATCHER, served
from tests.conftest import sqlite_ledger
from tests.factories import bearer

API_KEY = "open311-test-key"

# ---- GeoReport v2 (wiki.open311.org/GeoReport_v2) as JSON schemas ---------------------------------

W3C_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
TEXT_OR_NULL = {"type": ["string", "null"]}
DATETIME_OR_NULL = {"type": ["string", "null"], "pattern": W3C_DATETIME}

SERVICES = {"type": "array", "items": {
    "type": "object", "required": ["service_code", "service_name", "metadata", "type"],
    "properties": {
        "service_code": {"type": "string", "minLength": 1},
        "service_name": {"type": "string"}, "description": TEXT_OR_NULL,
        "metadata": {"type": "boolean"},
        "type": {"enum": ["realtime", "batch", "blackbox"]},
        "keywords": TEXT_OR_NULL, "group": TEXT_OR_NULL}}}

SERVICE_DEFINITION = {
    "type": "object", "required": ["service_code", "attributes"],
    "properties": {
        "service_code": {"type": "string"},
        "attributes": {"type": "array", "items": {
            "type": "object",
            "required": ["variable", "code", "datatype", "required", "order", "description"],
            "properties": {
                "variable": {"type": "boolean"}, "code": {"type": "string"},
                "datatype": {"enum": ["string", "number", "datetime", "text",
                                      "singlevaluelist", "multivaluelist"]},
                "required": {"type": "boolean"}, "datatype_description": TEXT_OR_NULL,
                "order": {"type": "integer", "minimum": 1},
                "description": {"type": "string"},
                "values": {"type": "array", "items": {
                    "type": "object", "required": ["key", "name"],
                    "properties": {"key": {"type": "string"}, "name": {"type": "string"}}}}}}}}}

CREATED = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["service_request_id"],
    "properties": {"service_request_id": {"type": "string", "minLength": 1},
                   "service_notice": TEXT_OR_NULL, "account_id": TEXT_OR_NULL}}}

REQUESTS = {"type": "array", "items": {
    "type": "object",
    "required": ["service_request_id", "status", "service_code", "requested_datetime"],
    "properties": {
        "service_request_id": {"type": "string", "minLength": 1},
        "status": {"enum": ["open", "closed"]}, "status_notes": TEXT_OR_NULL,
        "service_name": TEXT_OR_NULL, "service_code": TEXT_OR_NULL,
        "description": TEXT_OR_NULL, "agency_responsible": TEXT_OR_NULL,
        "service_notice": TEXT_OR_NULL,
        "requested_datetime": {"type": "string", "pattern": W3C_DATETIME},
        "updated_datetime": DATETIME_OR_NULL, "expected_datetime": DATETIME_OR_NULL,
        "address": TEXT_OR_NULL, "address_id": TEXT_OR_NULL, "zipcode": TEXT_OR_NULL,
        "lat": {"type": ["number", "null"]}, "long": {"type": ["number", "null"]},
        "media_url": TEXT_OR_NULL}}}

ERRORS = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["code", "description"],
    "properties": {"code": {"type": "integer"}, "description": {"type": "string",
                                                               "minLength": 1}}}}


def valid(instance, schema) -> None:
    jsonschema.validate(instance, schema, cls=jsonschema.Draft202012Validator)


# ---- a running server ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
async def server(dev_env, catalog, executor, tmp_path_factory):
    ledger = sqlite_ledger(tmp_path_factory.mktemp("open311"))
    settings = Settings(task_queue=f"open311-{uuid.uuid4().hex[:8]}",
                        open311_api_keys={API_KEY: "open311-fixmystreet"})
    app = create_app(settings, CaseService(dev_env.client, ledger, catalog, settings))
    async with build_worker(dev_env.client, settings.task_queue, ledger, executor):
        async with served(app) as base_url:
            yield base_url
    ledger.engine.dispose()


def client(base: str, fmt: str = "json") -> GeoReport:
    return GeoReport(f"{base}/open311/v2", output_format=fmt)


def request_form(**overrides) -> dict:
    form = {"api_key": API_KEY, "service_code": "exposed_garbage",
            "attribute[district]": "城关区", "attribute[street]": "吉日街道",
            "lat": "29.6535", "long": "91.1335", "address_string": "吉日巷12号旁",
            "description": "巷口垃圾堆积", "first_name": "Lhamo", "last_name": "Dolma",
            "phone": "13800000009"}
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


async def open_request(base: str, fmt: str = "json", key: str | None = None,
                       **overrides) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{base}/open311/v2/requests.{fmt}", data=request_form(**overrides),
                               headers=headers)


# ---- services ------------------------------------------------------------------------------------

async def test_the_service_list_is_the_category_list_in_json_and_xml(server, catalog):
    as_json = await asyncio.to_thread(client(server).get_service_list)
    valid(as_json, SERVICES)
    assert {s["service_code"] for s in as_json} == set(catalog.categories)
    garbage = next(s for s in as_json if s["service_code"] == "exposed_garbage")
    assert (garbage["service_name"], garbage["group"], garbage["metadata"]) == \
        ("暴露垃圾", "环境卫生", True)
    as_xml = await asyncio.to_thread(client(server, "xml").get_service_list)
    assert [s["service_code"] for s in as_xml] == [s["service_code"] for s in as_json]
    assert as_xml[0]["metadata"] == "true" and as_xml[0]["service_name"] == as_json[0][
        "service_name"]


async def test_a_service_definition_lists_where_a_request_must_say_it_is(server, catalog):
    definition = await asyncio.to_thread(client(server).get_service_definition, "bin_overflow")
    valid(definition, SERVICE_DEFINITION)
    district = definition["attributes"][0]
    assert (district["code"], district["required"], district["datatype"]) == \
        ("district", True, "singlevaluelist")
    assert {v["key"] for v in district["values"]} == set(catalog.districts)
    as_xml = await asyncio.to_thread(client(server, "xml").get_service_definition,
                                     "bin_overflow")
    attributes = as_xml["attributes"]["attribute"]
    assert [a["code"] for a in attributes] == ["district", "street", "community"]
    assert len(attributes[0]["values"]["value"]) == len(catalog.districts)


async def test_unknown_services_and_formats_answer_in_the_standard_error_format(server):
    async with httpx.AsyncClient(base_url=f"{server}/open311/v2") as http:
        missing = await http.get("/services/no_such_service.json")
        assert missing.status_code == 404
        valid(missing.json(), ERRORS)
        assert missing.json()[0]["code"] == 404
        as_xml = await http.get("/services/no_such_service.xml")
        assert as_xml.status_code == 404 and as_xml.headers["content-type"].startswith("text/xml")
        assert "<errors><error><code>404</code><description>" in as_xml.text
        other = await http.get("/services.csv")
        assert other.status_code == 404
        valid(other.json(), ERRORS)


# ---- requests ------------------------------------------------------------------------------------

async def test_a_request_opened_by_form_is_read_back_by_the_client(server):
    opened = await open_request(server, key=f"fms-{uuid.uuid4().hex}")
    assert opened.status_code == 201, opened.text
    valid(opened.json(), CREATED)
    (created,) = opened.json()
    request_id = created["service_request_id"]
    assert created["service_notice"] == "已受理，由环境卫生办理"

    read = await asyncio.to_thread(client(server).get_service_request, request_id)
    valid([read], REQUESTS)
    assert (read["status"], read["service_code"], read["agency_responsible"]) == \
        ("open", "exposed_garbage", "环境卫生")
    assert read["status_notes"] == "待签收" and read["description"] == "巷口垃圾堆积"
    assert (read["lat"], read["long"]) == (29.6535, 91.1335)
    assert read["address"] == "城关区吉日街道吉日巷12号旁"
    deadline = datetime.fromisoformat(read["expected_datetime"])
    assert deadline > datetime.fromisoformat(read["requested_datetime"])
    assert "Dolma" not in str(read) and "13800000009" not in str(read)

    as_xml = await asyncio.to_thread(client(server, "xml").get_service_request, request_id)
    assert (as_xml["service_request_id"], as_xml["status"], as_xml["lat"]) == \
        (request_id, "open", "29.6535")
    assert as_xml["expected_datetime"] == read["expected_datetime"]


async def test_the_same_idempotency_key_opens_one_request(server):
    key = f"fms-{uuid.uuid4().hex}"
    first = await open_request(server, key=key)
    again = await open_request(server, "xml", key=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert f"<service_request_id>{first.json()[0]['service_request_id']}</service_request_id>" \
        in again.text


@pytest.mark.parametrize("overrides, status, words", [
    ({"api_key": None}, 403, "api_key"),
    ({"api_key": "stolen"}, 403, "api_key"),
    ({"service_code": "no_such_service"}, 404, "service_code"),
    ({"attribute[district]": None}, 400, "attribute[district]"),
    ({"attribute[district]": "不存在区"}, 400, "unknown district"),
    ({"lat": None, "long": None, "address_string": None}, 400, "location"),
    ({"lat": "north"}, 400, "lat"),
    ({"media_url": "not a url"}, 400, "attachments"),
])
async def test_a_bad_request_is_refused_in_the_standard_format_and_opens_nothing(
        server, overrides, status, words):
    key = f"bad-{uuid.uuid4().hex}"
    refused = await open_request(server, key=key, **overrides)
    assert refused.status_code == status, refused.text
    valid(refused.json(), ERRORS)
    assert refused.json()[0]["code"] == status and words in refused.json()[0]["description"]
    # The same key with a good form opens a new request: the refused one left nothing behind.
    assert (await open_request(server, key=key)).status_code == 201


async def test_requests_are_filtered_by_id_service_status_and_date(server):
    ids = []
    for code in ("street_light_out", "street_light_out", "noise_nuisance"):
        response = await open_request(server, service_code=code)
        ids.append(response.json()[0]["service_request_id"])
    async with httpx.AsyncClient(base_url=server) as http:
        rejected = await http.post(f"/cases/{ids[1]}/actions/reject", json={"reason": "重复上报"},
                                   headers={**bearer(DISPATCHER), "Idempotency-Key": ids[1]})
        assert rejected.status_code == 200, rejected.text
    georeport = client(server)

    by_id = await asyncio.to_thread(georeport.get_service_requests,
                                    service_request_id=f"{ids[0]},{ids[2]}", status="closed")
    valid(by_id, REQUESTS)
    assert {r["service_request_id"] for r in by_id} == {ids[0], ids[2]}, "ids override filters"

    lights = await asyncio.to_thread(georeport.get_service_requests,
                                     service_code="street_light_out")
    assert {r["service_request_id"] for r in lights} == {ids[0], ids[1]}
    closed = await asyncio.to_thread(georeport.get_service_requests,
                                     service_code="street_light_out,noise_nuisance",
                                     status="closed")
    assert [(r["service_request_id"], r["status_notes"]) for r in closed] == \
        [(ids[1], "已作废：重复上报")]
    still_open = await asyncio.to_thread(georeport.get_service_requests, status="open",
                                         service_code="street_light_out,noise_nuisance")
    assert {r["service_request_id"] for r in still_open} == {ids[0], ids[2]}

    now = datetime.now(timezone.utc)
    before = await asyncio.to_thread(
        georeport.get_service_requests, service_code="noise_nuisance",
        start_date=(now - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end_date=(now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert before == []
    as_xml = await asyncio.to_thread(client(server, "xml").get_service_requests,
                                     service_request_id=ids[2])
    assert as_xml["service_request_id"] == ids[2]

    async with httpx.AsyncClient(base_url=f"{server}/open311/v2") as http:
        page = await http.get("/requests.json", params={"service_code": "street_light_out",
                                                        "page_size": 1, "page": 2})
        assert [r["service_request_id"] for r in page.json()] == [ids[0]]
        for params, words in (
                ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
                 "90 days"),
                ({"start_date": "yesterday"}, "start_date"),
                ({"end_date": "2026-06-01T00:00:00"}, "end_date"),
                ({"status": "pending"}, "status"),
                ({"service_code": "no_such_service"}, "service_code"),
                ({"page_size": "1001"}, "page_size")):
            refused = await http.get("/requests.json", params=params)
            assert refused.status_code in (400, 404), params
            valid(refused.json(), ERRORS)
            assert words in refused.json()[0]["description"], params
        missing = await http.get("/requests/hotline-nope.xml")
        assert missing.status_code == 404 and "<code>404</code>" in missing.text


async def test_reads_can_be_closed_to_callers_without_a_key(catalog, ledger):
    settings = Settings(open311_api_keys={API_KEY: "open311-dashboard"},
                        open311_public_reads=False)
    app = create_app(settings, CaseService(None, ledger, catalog, settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://bihuan/open311/v2") as http:
        refused = await http.get("/services.json")
        assert refused.status_code == 403
        valid(refused.json(), ERRORS)
        allowed = await http.get("/services.json", params={"api_key": API_KEY})
        assert allowed.status_code == 200
        valid(allowed.json(), SERVICES)
