import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from config.catalog import DEFAULT_CONFIG_DIR, load_catalog
from config.settings import Settings
from ledger.db import in_schema, make_engine
from ledger.migrate import upgrade
from ledger.repository import Ledger
from notifications.webhook import WebhookSender
from runtime.devserver import installed_binary
from runtime.temporal import data_converter, register_search_attributes
from runtime.worker import build_worker
from tests.api_client import in_process
from tests.webhook_receiver import SECRET, Receiver
from workflows import search_attributes

POSTGRES_URL = os.environ.get("BIHUAN_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def catalog():
    return load_catalog(DEFAULT_CONFIG_DIR)


@pytest.fixture(scope="session")
def executor():
    with ThreadPoolExecutor(max_workers=8) as pool:
        yield pool


def sqlite_ledger(directory: Path) -> Ledger:
    url = f"sqlite:///{directory / 'ledger.db'}"
    upgrade(url)
    return Ledger(make_engine(url))


@pytest.fixture(scope="session")
def ledger(tmp_path_factory) -> Ledger:
    return sqlite_ledger(tmp_path_factory.mktemp("ledger"))


@contextmanager
def postgres_ledger() -> Iterator[Ledger]:
    """A fresh schema of its own in the PostgreSQL test database, so concurrent runs never
    meet. Required in CI; skipped elsewhere only when no server answers."""
    schema = f"bihuan_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as err:  # noqa: BLE001 - any connection failure means "not reachable"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required in CI: {err}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable: {err}")
    url = in_schema(POSTGRES_URL, schema)
    upgrade(url)
    ledger = Ledger(make_engine(url))
    try:
        yield ledger
    finally:
        ledger.engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


async def start_time_skipping_env() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=installed_binary("temporal-test-server"),
        data_converter=data_converter)
    await register_search_attributes(env.client)
    return env


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_ledger(request, tmp_path):
    """The same test on a fresh SQLite ledger and on a fresh PostgreSQL schema."""
    if request.param == "postgresql":
        with postgres_ledger() as ledger:
            yield ledger
        return
    ledger = sqlite_ledger(tmp_path)
    yield ledger
    ledger.engine.dispose()


@pytest.fixture(scope="session")
async def time_env():
    env = await start_time_skipping_env()
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
async def own_time_env():
    """A time-skipping server for one module. For tests that need its clock near today (the
    business calendar covers only the published years, and other modules skip years ahead), or
    that run child workflows, after which long sleeps on that server stop skipping time
    (sdk-java#1618)."""
    env = await start_time_skipping_env()
    yield env
    await env.shutdown()


async def start_dev_env() -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"), namespace="bihuan",
        data_converter=data_converter,
        search_attributes=list(search_attributes.ALL_KEYS))


@pytest.fixture(scope="session")
async def dev_env():
    env = await start_dev_env()
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
async def api(request, dev_env, ledger, catalog, executor):
    """The real app over the dev server, with a worker on a task queue of the test module's own."""
    settings = Settings(task_queue=f"api-{request.module.__name__}", action_timeout_seconds=10)
    async with build_worker(dev_env.client, settings.task_queue, ledger, executor):
        async with in_process(dev_env.client, ledger, catalog, settings) as client:
            yield client


# ---- webhook receivers: real HTTP servers standing in for those bihuan notifies -------------------

@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make() -> Receiver:
        made.append(Receiver())
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def receiver(receivers) -> Receiver:
    return receivers()


@pytest.fixture
async def sender():
    async with WebhookSender(SECRET, timeout_seconds=2.0) as s:
        yield s
