"""The FastAPI application. `create_app` takes ready-made parts in tests; in production the
lifespan connects to Temporal and the ledger (clients do not survive a fork, so never earlier)."""

from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import errors, observability
from api.limits import BodySizeLimit
from api.routes import (admin, cases, catalog, dashboard, hotline, open311, stats, supervision,
                        whistles)
from api.service import CaseService
from config.catalog import load_catalog
from config.settings import Settings
from ledger.db import make_engine
from ledger.repository import Ledger
from runtime.collector import freeze_start_up
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
        # Loads and checks the hotline's code mapping now: a broken file stops start-up.
        hotline.hotline_service(app)
        freeze_start_up()
        get_logger("api").info("api ready", temporal=settings.temporal_address)
        yield
        await app.state.service.started_cases.close()
        engine.dispose()

    app = FastAPI(title="bihuan 闭环 — city case engine", version="0.1.0",
                  description=DESCRIPTION, lifespan=lifespan,
                  dependencies=[Depends(observability.bind_request)])
    app.state.settings = settings
    app.state.metrics = observability.ApiMetrics(app.state)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Outermost: the request id is bound before anything logs, and every answer is counted.
    app.add_middleware(observability.RequestContext, metrics=app.state.metrics)
    if service is not None:
        app.state.service = service
    errors.install(app)
    # Before cases: GET /cases/{case_id} would otherwise take /cases/export for a case id.
    app.include_router(supervision.router)
    app.include_router(cases.router)
    app.include_router(whistles.router)
    app.include_router(catalog.router)
    app.include_router(stats.router)
    app.include_router(hotline.router)
    app.include_router(admin.router)
    app.include_router(open311.router)
    app.include_router(observability.router)
    dashboard.install(app)

    @app.get("/healthz", tags=["health"], summary="The process is up")
    def healthz() -> dict:
        return {"status": "ok"}

    return app
