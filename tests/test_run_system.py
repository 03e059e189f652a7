"""`make run` as a user runs it: the whole system in real processes, stopped with Ctrl-C and
started again on the same files, with every case where it was."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import httpx

from notifications.webhook import verify_signature
from tests.webhook_receiver import Receiver

from config.catalog import DEFAULT_CONFIG_DIR
from tests.api_client import free_port
from tests.factories import bearer

OFFICER = bearer({"id": "o017", "name": "扎西", "role": "officer", "team": "环境卫生"})
WEBHOOK_SECRET = "system-test-webhook-secret"
GRID_WORKER = bearer({"id": "g1", "name": "拉姆", "role": "reporter"})


def start_system(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "run"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_healthy(api: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(f"{api}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError("the API did not come up within 90 s")


def stop_with_ctrl_c(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    return output


def wait_for_webhook(receiver: Receiver, case_id: str, kind: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for request in list(receiver.requests):
            body = request.json()
            if body["case_id"] == case_id and body["kind"] == kind:
                assert verify_signature(WEBHOOK_SECRET, request.headers["X-Bihuan-Timestamp"],
                                        request.body, request.headers["X-Bihuan-Signature"])
                return body
        time.sleep(0.2)
    raise AssertionError(f"no {kind} webhook for {case_id} within 30 s")


def test_the_system_runs_stops_cleanly_and_keeps_its_cases(tmp_path):
    ports = {name: free_port() for name in ("api", "temporal", "ui")}
    receiver = Receiver()
    env = {**os.environ, "BIHUAN_DATA_DIR": str(tmp_path / "var"),
           "BIHUAN_API_PORT": str(ports["api"]),
           "BIHUAN_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
           "BIHUAN_TEMPORAL_UI_PORT": str(ports["ui"]),
           "BIHUAN_WEBHOOK_URLS": json.dumps([receiver.url]),
           "BIHUAN_WEBHOOK_SECRET": WEBHOOK_SECRET}
    api = f"http://127.0.0.1:{ports['api']}"
    case = {"source": "grid", "external_id": "WG-0001", "category": "暴露垃圾",
            "description": "娘热路边垃圾堆积",
            "location": {"district": "城关区", "street": "娘热街道", "address": "娘热路88号"}}

    proc = start_system(env)
    try:
        wait_healthy(api, proc)
        opened = httpx.post(f"{api}/cases", json=case, headers=GRID_WORKER, timeout=30)
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["case_id"]
        # The worker's relay tells the team through the webhook, signed.
        told = wait_for_webhook(receiver, case_id, "assigned")
        assert told["audience"] == "team" and told["recipient"] == "环境卫生"
        # The dashboard comes with the API: its sign-in page and its own stylesheet.
        for page in ("/dashboard/login", "/dashboard/static/dashboard.css"):
            assert httpx.get(f"{api}{page}", timeout=30).status_code == 200, page
    except AssertionError:
        print(stop_with_ctrl_c(proc))
        raise
    finally:
        if proc.poll() is None:
            output = stop_with_ctrl_c(proc)
    assert f"{api}/docs" in output and f"127.0.0.1:{ports['ui']}" in output
    assert f"{api}/dashboard" in output
    for name in ("api", "worker", "temporal"):
        assert f"stopped {name}" in output
    assert (tmp_path / "var" / "temporal.db").exists() and (tmp_path / "var" / "ledger.db").exists()

    proc = start_system(env)
    try:
        wait_healthy(api, proc)
        view = httpx.get(f"{api}/cases/{case_id}", headers=GRID_WORKER, timeout=30)
        assert view.json()["stage"] == "assigned"
        again = httpx.post(f"{api}/cases", json=case, headers=GRID_WORKER, timeout=30)
        assert again.status_code == 200 and again.json()["case_id"] == case_id
        # The workflow itself survived, not just the ledger row: it takes the next action.
        accepted = httpx.post(f"{api}/cases/{case_id}/actions/accept", json={}, headers=OFFICER,
                              timeout=30)
        assert accepted.status_code == 200 and accepted.json()["to_stage"] == "rectifying"
        assert receiver.event_ids()[told["event_id"]] == 1  # not sent again after the restart
        retention = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "temporal"), "operator", "namespace",
             "describe", "-n", "bihuan", "--address", f"127.0.0.1:{ports['temporal']}"],
            capture_output=True, text=True, check=True).stdout
        assert "8760h" in retention  # 365 days
    finally:
        stop_with_ctrl_c(proc)
        receiver.close()


def test_a_broken_config_file_stops_start_up_naming_file_field_and_problem(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, config)
    categories = config / "categories.yaml"
    categories.write_text(categories.read_text(encoding="utf-8").replace(
        "team: 环境卫生", "team: 环卫", 1), encoding="utf-8")
    env = {**os.environ, "BIHUAN_CONFIG_DIR": str(config), "BIHUAN_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "cli.main", "run"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "categories.yaml" in result.stderr and ".team" in result.stderr
    assert "环卫" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "temporal.db").exists()
