"""`bihuan` command line: run the whole system, or one part of it."""

import argparse
import asyncio
import sys

from datetime import timedelta

from pydantic import ValidationError

from api.auth import CLAIMS, REQUIRED_SCOPE, mint_token
from config.catalog import ConfigError, load_catalog
from config.settings import Settings
from domain.models import Actor
from domain.roles import Role
# Commands that used the Temporal SDK leave through it: its runtime can crash at interpreter
# exit after a good run.
from runtime.scripts import run_and_exit


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bihuan", description="闭环 city case engine")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="dev server + worker + API on the embedded defaults (make run)")
    sub.add_parser("worker", help="run a case worker")
    sub.add_parser("api", help="serve the HTTP API")
    sub.add_parser("worker-health", help="ask the worker's /healthz (BIHUAN_WORKER_HEALTH_PORT); "
                   "exit 0 when healthy, 1 otherwise (for container health checks)")
    sub.add_parser("migrate", help="apply the ledger migrations")
    rebuild = sub.add_parser("rebuild", help="re-project the ledger from the workflows in "
                             "Temporal and report how it differed")
    rebuild.add_argument("--dry-run", action="store_true",
                         help="only report the differences; write nothing")
    rebuild.add_argument("--case", metavar="CASE_ID", help="only this case and its whistles")
    demo = sub.add_parser("demo", help="open and drive a handful of cases against a running API")
    demo.add_argument("--api", help="API base URL (default: from settings)")
    token = sub.add_parser("token", help="mint a signed token for local use and demos")
    token.add_argument("--role", required=True, choices=[r.value for r in Role if r != Role.SYSTEM])
    token.add_argument("--sub", required=True, help="the person's id")
    token.add_argument("--name", default="")
    for claim in CLAIMS:
        token.add_argument(f"--{claim}")
    token.add_argument("--ttl-minutes", type=int, help="default: BIHUAN_TOKEN_TTL_MINUTES")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as err:
        sys.exit(f"bihuan: settings error: {err.errors()[0]['msg']}")
    try:
        # A broken domain file stops every command here, before anything starts.
        load_catalog(settings.config_dir)
    except ConfigError as err:
        sys.exit(f"bihuan: configuration error in {err}")

    if args.command == "run":
        from cli.supervisor import run_all
        sys.exit(run_all(settings))
    if args.command == "worker":
        from runtime.logging import configure
        from runtime.worker import run_worker
        configure(settings.log_level, json=settings.environment == "production")
        run_and_exit(_status(run_worker(settings)))
    elif args.command == "api":
        import uvicorn

        from api.http_protocol import OneWriteHttpToolsProtocol
        from runtime.logging import configure
        configure(settings.log_level, json=settings.environment == "production")
        # log_config=None: uvicorn's lines go through the same (JSON) handler; its access line
        # is left out, as api/observability.py logs every request with its id and route. On
        # SIGTERM it stops accepting, then lets requests in flight finish within the grace
        # period.
        uvicorn.run("api.main:create_app", factory=True, host=settings.api_host,
                    port=settings.api_port, log_level=settings.log_level.lower(),
                    log_config=None, access_log=False, http=OneWriteHttpToolsProtocol,
                    timeout_graceful_shutdown=int(settings.api_shutdown_grace_seconds))
    elif args.command == "worker-health":
        from runtime.health import probe
        if not settings.worker_health_port:
            sys.exit("bihuan worker-health: BIHUAN_WORKER_HEALTH_PORT is not set, so the worker "
                     "serves no health endpoint.")
        status, body = probe(settings.worker_health_host, settings.worker_health_port)
        print(body if status else f"bihuan worker-health: no answer: {body}")
        sys.exit(0 if status == 200 else 1)
    elif args.command == "migrate":
        from ledger.migrate import upgrade
        upgrade(settings.ledger_url)
    elif args.command == "rebuild":
        run_and_exit(rebuild_ledger(settings, args.dry_run, args.case))
    elif args.command == "token":
        print(mint_cli_token(settings, args))
    elif args.command == "demo":
        from cli.demo import run_demo
        sys.exit(asyncio.run(run_demo(args.api or settings.api_url, settings)))


async def _status(work) -> int:
    await work
    return 0


async def rebuild_ledger(settings: Settings, dry_run: bool, case_id: str | None) -> int:
    """Prints the report; the exit status is RebuildReport.exit_code, or 2 when Temporal or
    the ledger cannot be read."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from ledger.db import make_engine
    from ledger.migrate import upgrade
    from ledger.rebuild import RebuildError, rebuild
    from ledger.repository import Ledger
    from runtime.temporal import connect
    try:
        client = await connect(settings)
    except RuntimeError as err:
        print(f"bihuan rebuild: cannot reach Temporal at {settings.temporal_address}: {err}",
              file=sys.stderr)
        return 2
    engine = None
    try:
        # A brand-new database gets its tables; an old one the schema the writer expects.
        upgrade(settings.ledger_url)
        engine = make_engine(settings.ledger_url)
        report = await rebuild(client, Ledger(engine), dry_run=dry_run, case_id=case_id)
    except RebuildError as err:
        print(f"bihuan rebuild: {err}", file=sys.stderr)
        return 2
    except SQLAlchemyError as err:
        ledger = make_url(settings.ledger_url).render_as_string(hide_password=True)
        print(f"bihuan rebuild: ledger {ledger}: {err}", file=sys.stderr)
        return 2
    finally:
        if engine is not None:
            engine.dispose()
    print(report.summary())
    return report.exit_code


def mint_cli_token(settings: Settings, args: argparse.Namespace) -> str:
    role = Role(args.role)
    missing = [c for c in REQUIRED_SCOPE.get(role, ()) if not getattr(args, c)]
    if missing:
        sys.exit(f"bihuan token: a {role.value} token needs --{' --'.join(missing)}")
    actor = Actor(id=args.sub, name=args.name, role=role,
                  **{c: getattr(args, c) for c in CLAIMS})
    ttl = timedelta(minutes=args.ttl_minutes) if args.ttl_minutes else None
    return mint_token(settings, actor, ttl)


if __name__ == "__main__":
    main()
