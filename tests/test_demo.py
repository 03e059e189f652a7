"""`bihuan demo` end to end: the real API served by uvicorn, a worker and the Temporal dev server,
with a ledger of its own so every row in it belongs to the demo."""

import uuid
from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.main import create_app
from api.service import CaseService
from cli.demo import run_demo
from config.settings import Settings
from ledger.tables import CaseRow
from runtime.worker import build_worker
from tests.api_client import free_port, served
from tests.conftest import sqlite_ledger


async def test_demo_drives_every_path(dev_env, executor, catalog, tmp_path, capsys):
    ledger = sqlite_ledger(tmp_path)
    settings = Settings(task_queue=f"demo-tests-{uuid.uuid4().hex[:8]}", data_dir=tmp_path)
    app = create_app(settings, service=CaseService(dev_env.client, ledger, catalog, settings))
    async with build_worker(dev_env.client, settings.task_queue, ledger, executor):
        async with served(app) as base_url:
            status = await run_demo(base_url, settings)
    out = capsys.readouterr().out
    assert status == 0, out

    with Session(ledger.engine) as session:
        rows = session.execute(select(CaseRow.case_id, CaseRow.stage, CaseRow.round)).all()
    stages = Counter(row.stage for row in rows)
    assert len(rows) == 10  # the redelivered ticket opened no second case
    assert stages == {"closed": 1, "invalid": 1, "recheck_pending": 1, "evaluating": 2,
                      "assigned": 2, "rectifying": 3}
    assert sorted(row.round for row in rows if row.stage in ("evaluating", "rectifying")) \
        == [1, 1, 1, 2, 2]
    assert "部门报到" in out and "部门办结" in out
    assert "HTTP 200 · 工单已存在" in out and settings.temporal_ui_url in out


async def test_demo_says_how_to_start_the_system_when_the_api_is_down(capsys):
    status = await run_demo(f"http://127.0.0.1:{free_port()}", Settings())
    assert status == 2
    assert "make run" in capsys.readouterr().out
