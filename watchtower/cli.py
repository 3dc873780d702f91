"""`watchtower serve | demo | migrate | monitor`: argparse keeps start-up free of heavy imports."""

import argparse
import logging
import sys

from watchtower.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `watchtower` command."""
    parser = argparse.ArgumentParser(prog="watchtower", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API and the monitor scheduler (uvicorn)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    commands.add_parser("demo", help="build real models, break one, and watch Watchtower act")
    commands.add_parser("migrate", help="create or upgrade the database schema")
    commands.add_parser("monitor", help="run every monitor once, now")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "httpx", "apscheduler"):  # APScheduler logs every run of every job at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    settings = Settings()

    if args.command == "serve":
        import uvicorn

        from watchtower.app import create_app
        from watchtower.db import engine_for, migrate

        engine = engine_for(settings)
        migrate(engine)
        uvicorn.run(create_app(settings, engine), host=args.host or settings.host, port=args.port or settings.port)
    elif args.command == "demo":
        from watchtower.demo import run_demo

        return run_demo(settings)
    elif args.command == "migrate":
        from watchtower.db import engine_for, migrate

        migrate(engine_for(settings))
        print(f"schema up to date at {settings.database_url}")
    elif args.command == "monitor":
        from watchtower.db import engine_for, migrate
        from watchtower.delivery import deliver_outbox
        from watchtower.monitor import run_monitor_pass
        from watchtower.runtime import Runtime

        runtime = Runtime(settings, engine_for(settings))
        migrate(runtime.engine)
        for result in run_monitor_pass(runtime):
            print(f"{result.model}/{result.monitor}: {result.status}"
                  + (f" (incident #{result.incident_id})" if result.incident_id else ""))
        deliver_outbox(runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
