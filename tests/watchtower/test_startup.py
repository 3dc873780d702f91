"""Start-up imports nothing heavy: `watchtower --help` no framework at all, the app and a migrate of a database
already at head no pandas, pyarrow, onnxruntime, scipy, scikit-learn, Alembic or Evidently, nor numpy (the first
batch, predict or monitor pass loads it), and `watchtower monitor` on an empty database not even FastAPI or the
senders' HTTP clients. Structural checks (which modules a fresh interpreter loaded), not timings:
bench/startup_bench.py times them."""

import json
import subprocess
import sys
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from tests.processes import ROOT
from watchtower.app import create_app
from watchtower.db import MIGRATIONS, _revision_values, script_heads
from watchtower.route_manifest import ROUTERS
from watchtower.settings import Settings
from watchtower.table_targets import MODULES

HEAVY = {"pandas", "pyarrow", "onnxruntime", "scipy", "sklearn", "skl2onnx", "alembic", "evidently", "numpy"}
# Loaded by the first request that needs them: a Slack click's signature check, a webhook or Slack delivery.
SENDERS = {"slack_sdk", "httpx"}
PAGES = {"jinja2"}  # loaded by the first page or write-up draft


def _modules(code: str) -> set[str]:
    """Every module a fresh interpreter has loaded after running `code`."""
    code += "\nimport sys; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}).stdout
    return set(out.splitlines()[-1].split())  # the last line: --help prints before it


def _loaded(code: str) -> set[str]:
    """Top-level packages a fresh interpreter has loaded after running `code`."""
    return {module.split(".")[0] for module in _modules(code)}


def test_cli_help_imports_no_framework() -> None:
    loaded = _loaded("import sys, watchtower.cli\nsys.argv = ['watchtower', '--help']\n"
                     "try:\n    watchtower.cli.main()\nexcept SystemExit:\n    pass")
    assert "argparse" in loaded  # the check sees what was imported
    assert loaded.isdisjoint(HEAVY | {"fastapi", "sqlalchemy", "pydantic", "pydantic_settings", "numpy"})


def test_creating_the_app_imports_nothing_heavy(tmp_path: Path) -> None:
    loaded = _loaded("from watchtower.app import create_app\nfrom watchtower.settings import Settings\n"
                     f"create_app(Settings(database_url='sqlite:///{tmp_path / 'w.db'}', scheduler_enabled=False))")
    unwanted = HEAVY | SENDERS | PAGES
    assert "fastapi" in loaded and loaded.isdisjoint(unwanted), sorted(loaded & unwanted)


def test_answering_healthz_builds_no_router_and_no_service(tmp_path: Path) -> None:
    """The routers (and the services, schemas and pages behind them) load with the first request that can match
    one of their paths (watchtower/lazy_routes.py); /healthz, /readyz and /metrics are the app's own."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _loaded(f"from watchtower.db import make_engine, migrate\nmigrate(make_engine('{url}'))")
    loaded = _modules("from fastapi.testclient import TestClient\nfrom watchtower.app import create_app\n"
                      "from watchtower.settings import Settings\n"
                      f"app = create_app(Settings(database_url='{url}', scheduler_enabled=False))\n"
                      "with TestClient(app) as client:\n    assert client.get('/healthz').status_code == 200\n"
                      "    assert client.get('/readyz').status_code == 200")
    routers = {module for module, _ in ROUTERS}
    assert "watchtower.app" in loaded and loaded.isdisjoint(routers), sorted(loaded & routers)
    services = {"postmortems.service", "alerts.silences.service", "watchtower.gauges", "postmortems.pages",
                "watchtower.auth.sessions", "watchtower.auth.session_models"}  # pages' sessions: the first page's
    assert loaded.isdisjoint(services), sorted(loaded & services)
    assert "pydantic" in loaded and "pydantic.v1" not in loaded  # FastAPI's check of inferred response models


def test_healthz_is_documented_as_fastapi_would_infer_it(settings: Settings, db: Engine) -> None:
    """/healthz declares its answer's schema itself (watchtower/app.py): the document says what the return
    annotation would have made FastAPI say."""
    inferred = FastAPI()

    @inferred.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    def ok(app: FastAPI) -> object:
        return app.openapi()["paths"]["/healthz"]["get"]["responses"]["200"]

    assert ok(create_app(settings, engine=db)) == ok(inferred)


def test_serving_with_the_scheduler_imports_nothing_heavy(tmp_path: Path) -> None:
    """The default `serve` starts the scheduler in the lifespan, before the first request: its jobs import what
    they need when they run (compaction: pandas and pyarrow), and its start reads the monitors without the
    registry's service (which imports the response policy and the incident service)."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _loaded(f"from watchtower.db import make_engine, migrate\nmigrate(make_engine('{url}'))")
    modules = _modules("from fastapi.testclient import TestClient\nfrom watchtower.app import create_app\n"
                       "from watchtower.settings import Settings\n"
                       f"app = create_app(Settings(database_url='{url}', scheduler_enabled=True))\n"
                       "with TestClient(app) as client:\n    assert client.get('/healthz').status_code == 200")
    loaded = {module.split(".")[0] for module in modules}
    assert "apscheduler" in loaded and loaded.isdisjoint(HEAVY), sorted(loaded & HEAVY)
    services = {"watchtower.registry.service", "postmortems.service", "watchtower.policy.holds"}
    assert "watchtower.scheduler.monitors" in modules and modules.isdisjoint(services), sorted(modules & services)
    assert "sqlalchemy.dialects.sqlite" in modules and "sqlalchemy.dialects.postgresql" not in modules


def test_monitor_on_an_empty_database_imports_nothing_heavy(tmp_path: Path) -> None:
    """No model, nothing to check: the window, pandas, scipy and the diagnosis stay unloaded; nothing in the
    outbox: no Slack or HTTP client; the CLI serves no routes: no FastAPI."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _loaded(f"from watchtower.db import make_engine, migrate\nmigrate(make_engine('{url}'))")
    modules = _modules(f"import os, sys\nos.environ['WATCHTOWER_DATABASE_URL'] = '{url}'\n"
                       "sys.argv = ['watchtower', 'monitor']\nfrom watchtower.cli import main\nmain()")
    loaded = {module.split(".")[0] for module in modules}
    unwanted = HEAVY | SENDERS | PAGES | {"fastapi", "uvicorn"}
    assert "sqlalchemy" in loaded and loaded.isdisjoint(unwanted), sorted(loaded & unwanted)
    assert "sqlalchemy.dialects.sqlite" in modules and "sqlalchemy.dialects.postgresql" not in modules
    check = {"watchtower.monitor_check", "detectors.base", "watchtower.checks.models", "watchtower.policy.decide"}
    assert "watchtower.monitor" in modules and modules.isdisjoint(check), sorted(modules & check)


def test_every_foreign_key_points_at_a_table_imported_before_any_session() -> None:
    """watchtower.db imports only the tables other modules' foreign keys name (watchtower/table_targets.py): a
    table whose module loads later resolves its foreign keys, whatever else is loaded (a module's own tables
    come with it)."""
    import watchtower.tables  # noqa: F401  (every table, to check them all)

    module_of = {table.name: mapper.class_.__module__ for mapper in SQLModel._sa_registry.mappers
                 for table in mapper.tables}
    named = {module_of[key.column.table.name] for table in SQLModel.metadata.tables.values()
             for key in table.foreign_keys if module_of[key.column.table.name] != module_of[table.name]}
    assert "watchtower.registry.models" in named  # the check sees the foreign keys
    assert named <= {module.__name__ for module in MODULES}, sorted(named - {m.__name__ for m in MODULES})


def test_a_table_imported_after_start_flushes(tmp_path: Path) -> None:
    """In a fresh interpreter that imports no table itself: the engine and a migration at head (no
    watchtower.tables), then a row of a table whose module was not loaded yet is written; its foreign key names
    a table that only watchtower.db's imports provide."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    _loaded(f"from sqlmodel import Session\nfrom watchtower.db import make_engine, migrate\n"
            f"from watchtower.registry.models import MonitoredModel, Pipeline\nengine = make_engine('{url}')\n"
            "migrate(engine)\nwith Session(engine) as session:\n"
            "    session.add(Pipeline(id=1, name='p'))\n    session.flush()\n"
            "    session.add(MonitoredModel(id=1, name='m', task='classification', features=[], input_style='tensor',\n"
            "                               output_kind='label', pipeline_id=1))\n    session.commit()")
    loaded = _modules(
        f"from watchtower.db import make_engine, migrate\nengine = make_engine('{url}')\nmigrate(engine)\n"
        "import sys\nassert 'watchtower.events.models' not in sys.modules\n"
        "from datetime import datetime, timezone\nfrom sqlmodel import Session\n"
        "from watchtower.events.models import IngestRejection\n"
        "with Session(engine) as session:\n"
        "    session.add(IngestRejection(model_id=1, ts=datetime(2026, 1, 1, tzinfo=timezone.utc), kind='extra',\n"
        "                                feature='f', count=1))\n"
        "    session.commit()")
    assert "watchtower.events.models" in loaded and "watchtower.tables" not in loaded


def test_migrate_imports_alembic_only_when_there_is_something_to_upgrade(tmp_path: Path) -> None:
    migrate = ("from watchtower.db import make_engine, migrate, applied_revisions, script_heads\n"
               f"engine = make_engine('sqlite:///{tmp_path / 'w.db'}')\nmigrate(engine)\n"
               "assert applied_revisions(engine) == script_heads()\n")
    assert "alembic" in _loaded(migrate)  # a new database: Alembic creates the schema
    assert "alembic" not in _loaded(migrate)  # already at head: a revision check, no Alembic


def test_cli_help_lists_the_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "watchtower.cli", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for command in ("serve", "demo", "migrate", "monitor", "profile"):
        assert command in out


def test_script_heads_agree_with_alembic() -> None:
    """The revision lines read without Alembic name the heads Alembic itself finds."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert script_heads() == set(ScriptDirectory.from_config(config).get_heads())


def test_a_revision_value_over_several_lines_is_parsed() -> None:
    source = ('"""merge"""\nimport sqlalchemy as sa\n\nrevision: str = "0031"\n'
              'down_revision: tuple[str, ...] = (\n    "0029",\n    "0030",\n)\n\n\ndef upgrade() -> None:\n    pass\n')
    assert _revision_values(source) == [("revision", "0031"), ("down_revision", ("0029", "0030"))]
    assert _revision_values('revision = "0001"\ndown_revision = None\n') == [("revision", "0001"),
                                                                              ("down_revision", None)]


def test_serve_and_monitor_collect_garbage_again_once_started(tmp_path: Path) -> None:
    """The CLI turns the cyclic collector off while `serve` and `monitor` start (watchtower/cli.py): on again
    after the monitor pass, which ends with everything frozen (the exit's collections skip it), and before
    the server runs (uvicorn.run replaced by a probe)."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    probe = ("import gc, os, sys\nimport uvicorn\nfrom watchtower.cli import main\n"
             f"os.environ['WATCHTOWER_DATABASE_URL'] = '{url}'\nseen = []\n"
             "sys.argv = ['watchtower', 'monitor']\nmain()\n"
             "print('monitor', gc.isenabled(), gc.get_freeze_count() > 0)\n"
             "uvicorn.run = lambda app, **kw: seen.append(gc.isenabled())\n"
             "sys.argv = ['watchtower', 'serve']\nmain()\nprint('serve', seen)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}).stdout
    assert "monitor True True" in out.splitlines() and "serve [True]" in out.splitlines(), out


def test_serve_defers_fastapis_models_and_serves_the_same_document(settings: Settings, db: Engine,
                                                                  tmp_path: Path) -> None:
    """`watchtower serve` imports fastapi with its pydantic models built at first use (watchtower/fastapi_import.py):
    they are not built when the server starts, models defined later are, and the OpenAPI document (which builds
    them) is the one an ordinary import gives."""
    url = f"sqlite:///{tmp_path / 'w.db'}"
    probe = ("import json, os, sys\nimport pydantic, uvicorn\nfrom watchtower.cli import main\n"
             f"os.environ['WATCHTOWER_DATABASE_URL'] = '{url}'\nos.environ['WATCHTOWER_API_TOKEN'] = 'probe'\n"
             "def run(app, **kw):\n"
             "    from fastapi.openapi.models import OpenAPI\n"
             "    class Later(pydantic.BaseModel):\n        x: int\n"
             "    print('built', OpenAPI.__pydantic_complete__, Later.__pydantic_complete__)\n"
             "    print(json.dumps(app.openapi(), sort_keys=True))\n"
             "uvicorn.run = run\nsys.argv = ['watchtower', 'serve']\nmain()\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT)}).stdout.splitlines()
    assert "built False True" in out, out[:-1]
    eager = create_app(settings.model_copy(update={"database_url": url}), engine=db).openapi()
    assert json.loads(out[-1]) == json.loads(json.dumps(eager, sort_keys=True))
