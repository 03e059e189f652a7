"""The FastAPI application. `create_app` takes ready-made parts in tests; in production the
lifespan connects to Temporal and the ledger (clients do not survive a fork, so never earlier)."""

from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.limits import BodySizeLimit
from api.routes import cases, catalog, dashboard, stats, supervision, whistles
from api.service import CaseService
from config.catalog import load_catalog
from config.settings import Settings
from ledger.db import make_engine
from ledger.repository import Ledger
from runtime.logging import configure, get_logger
from runtime.temporal import connect

DESCRIPTION = """
闭环 (bihuan): every environmental or resident problem in Lhasa is one durable case —
reported → assigned → rectifying → verifying → evaluating → recheck (回头看) → closed.

Every route but `/healthz` and the docs needs `Authorization: Bearer <JWT>`; the acting person
is taken from the token (`bihuan token --role … --sub …` mints one for local use).
Send an `Idempotency-Key` header with every POST: a retried request is applied once.
Refusals answer with `{"code", "message", "details"}`; `code` is stable for machines.
"""


def create_app(settings: Settings | None = None, service: CaseService | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if service is not None:
            app.state.service = service
            yield
            return
        configure(settings.log_level, json=settings.environment == "production")
        engine = make_engine(settings.ledger_url)
        app.state.service = CaseService(await connect(settings), Ledger(engine),
                                        load_catalog(settings.config_dir), settings)
        get_logger("api").info("api ready", temporal=settings.temporal_address)
        yield
        engine.dispose()

    app = FastAPI(title="bihuan 闭环 — city case engine", version="0.1.0",
                  description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if service is not None:
        app.state.service = service
    errors.install(app)
    # Before cases: GET /cases/{case_id} would otherwise take /cases/export for a case id.
    app.include_router(supervision.router)
    app.include_router(cases.router)
    app.include_router(whistles.router)
    app.include_router(catalog.router)
    app.include_router(stats.router)
    dashboard.install(app)

    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict:
        return {"status": "ok"}

    return app
