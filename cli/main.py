"""`bihuan` command line: run the whole system, or one part of it."""

import argparse
import asyncio
import sys

from config.catalog import ConfigError, load_catalog
from config.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bihuan", description="闭环 city case engine")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="dev server + worker + API on the embedded defaults (make run)")
    sub.add_parser("worker", help="run a case worker")
    sub.add_parser("api", help="serve the HTTP API")
    sub.add_parser("migrate", help="apply the ledger migrations")
    demo = sub.add_parser("demo", help="open and drive a handful of cases against a running API")
    demo.add_argument("--api", help="API base URL (default: from settings)")
    args = parser.parse_args(argv)
    settings = Settings()
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
    elif args.command == "demo":
        from cli.demo import run_demo
        sys.exit(asyncio.run(run_demo(args.api or settings.api_url, settings)))


if __name__ == "__main__":
    main()
