"""`watchtower serve | demo | migrate | monitor | backtest | profile | user add`: argparse keeps start-up light."""

import argparse
import gc
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic-settings costs a third of `watchtower --help`
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
    backtest = commands.add_parser("backtest", help="replay a model's stored passes against a candidate policy")
    backtest.add_argument("model")
    backtest.add_argument("--since", default="30d", help="a duration back from now (30d, 12h, 90m) or a datetime")
    backtest.add_argument("--until", help="a datetime (default: now)")
    backtest.add_argument("--policy", help="the candidate policy, JSON or YAML (default: the model's current one)")
    profile = commands.add_parser("profile", help="profile a model's served rows in Parquet files or a table on "
                                  "Spark and post the profile(s) (needs watchtower[spark] and Java)")
    from watchtower.lake.command import add_arguments  # argparse only: pyspark loads when the command runs

    add_arguments(profile)
    user = commands.add_parser("user", help="people: `user add --admin NAME` creates the first admin")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    user_add = user_commands.add_parser("add", help="add a person and print a first API token (shown once)")
    user_add.add_argument("handle")
    user_add.add_argument("--name", help="display name (default: the handle)")
    level = user_add.add_mutually_exclusive_group()
    level.add_argument("--admin", action="store_const", const="admin", dest="role")
    level.add_argument("--role", choices=["viewer", "responder", "admin"])
    user_add.set_defaults(role="viewer")
    set_password = user_commands.add_parser("set-password", help="set a person's page sign-in password (prompted, "
                                            "or read from standard input when it is not a terminal); ends their "
                                            "sessions")
    set_password.add_argument("handle")
    args = parser.parse_args(argv)
    if args.command in ("serve", "monitor"):
        # No collection while start-up imports what lives as long as the process: a full one scans every object
        # so far (in a start they cost ~0.1 s and found ~180 garbage objects), and the ~280 young ones cost
        # 0.06-0.09 s to free ~1,400 objects. The collector is back on before the work (serve: once heap.enable
        # froze it all, those ~1,400 objects with it).
        gc.disable()
    if args.command == "profile":  # a client of the server: no settings, no database
        from watchtower.lake.command import run

        return run(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "httpx", "apscheduler"):  # APScheduler logs every run of every job at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from watchtower.settings import Settings

    settings = Settings()

    if args.command == "serve":
        import uvicorn

        from watchtower.fastapi_import import import_fastapi

        import_fastapi()  # before anything else imports it

        from watchtower import heap
        from watchtower.app import create_app
        from watchtower.db import engine_for, migrate

        engine = engine_for(settings)
        migrate(engine)
        app = create_app(settings, engine)
        # What start-up built (modules, the app, the ORM's registry) lives as long as the process: kept out of
        # the collector's view, a full collection scans only what requests made, not the ~380k start-up objects
        # (one such collection took about 0.2 s of CPU amid a predict benchmark). Here, not in create_app: a
        # process that builds many apps (the tests) would keep each one's cycles forever.
        heap.enable()
        gc.enable()
        uvicorn.run(app, host=args.host or settings.host, port=args.port or settings.port)
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
        gc.enable()
        for result in run_monitor_pass(runtime):
            print(f"{result.model}/{result.monitor}: {result.status}"
                  + (f" (incident #{result.incident_id})" if result.incident_id else ""))
        deliver_outbox(runtime)
        # The interpreter's exit runs full collections over every object (~0.18 s of CPU after a pass on an
        # empty database, more than the pass); frozen, the objects are skipped. Their connections are closed
        # first, as those collections would have done.
        runtime.engine.dispose()
        gc.freeze()
    elif args.command == "user":
        if args.user_command == "add":
            return _add_user(settings, args.handle, args.role, args.name)
        from watchtower.auth.cli import set_password_command

        return set_password_command(settings, args.handle)
    elif args.command == "backtest":
        return _backtest(settings, args.model, args.since, args.until, args.policy)
    return 0


def _add_user(settings: "Settings", handle: str, role: str, name: str | None) -> int:
    """Create the person, print their first token; 2 naming the problem when the handle is bad or taken."""
    from pydantic import ValidationError

    from watchtower.auth.bootstrap import add_user
    from watchtower.auth.roles import Role
    from watchtower.db import engine_for, migrate
    from watchtower.errors import WatchtowerError

    engine = engine_for(settings)
    try:  # the engine's connections closed at the end: a caller in a long-lived process (the tests) keeps none
        migrate(engine)
        secret = add_user(engine, handle, Role(role), name)
    except ValidationError as exc:
        for error in exc.errors():
            print(f"user add: {'.'.join(str(p) for p in error['loc'])}: {error['msg']}", file=sys.stderr)
        return 2
    except WatchtowerError as exc:
        print(f"user add: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"added {handle} ({role}); their API token, shown only now:\n{secret}")
    return 0


def _backtest(settings: "Settings", name: str, since: str, until: str | None, policy_file: str | None) -> int:
    """Print candidate vs current (replayed) vs what really happened; 2 on bad input, naming what is wrong."""
    from pathlib import Path

    import yaml
    from pydantic import ValidationError
    from sqlmodel import Session

    from watchtower.clock import utcnow
    from watchtower.db import engine_for
    from watchtower.errors import WatchtowerError
    from watchtower.policy.backtest_report import moment, render
    from watchtower.policy.backtest_store import backtest_model
    from watchtower.policy.rules import Policy
    from watchtower.registry.service import get_model

    now = utcnow()
    try:
        candidate = Policy.model_validate(yaml.safe_load(Path(policy_file).read_text())) if policy_file else None
        start, end = moment(since, now), moment(until, now) if until else None
        with Session(engine_for(settings)) as session:
            result = backtest_model(session, get_model(session, name), candidate, start, end, now)
    except ValidationError as exc:
        for error in exc.errors():
            print(f"{policy_file}: {'.'.join(str(p) for p in error['loc'])}: {error['msg']}", file=sys.stderr)
        return 2
    except (WatchtowerError, ValueError, OSError, yaml.YAMLError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 2
    print(render(result, candidate is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
