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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bihuan", description="闭环 city case engine")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="dev server + worker + API on the embedded defaults (make run)")
    sub.add_parser("worker", help="run a case worker")
    sub.add_parser("api", help="serve the HTTP API")
    sub.add_parser("migrate", help="apply the ledger migrations")
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
        asyncio.run(run_worker(settings))
    elif args.command == "api":
        import uvicorn
        uvicorn.run("api.main:create_app", factory=True, host=settings.api_host,
                    port=settings.api_port, log_level=settings.log_level.lower())
    elif args.command == "migrate":
        from ledger.migrate import upgrade
        upgrade(settings.ledger_url)
    elif args.command == "token":
        print(mint_cli_token(settings, args))
    elif args.command == "demo":
        from cli.demo import run_demo
        sys.exit(asyncio.run(run_demo(args.api or settings.api_url, settings)))


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
