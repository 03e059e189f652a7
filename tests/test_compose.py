"""What a deployer relies on in docker-compose.yml and the Dockerfile, checked without a Docker
engine: the services, their start order, pinned images, the Temporal namespace and search
attributes the workflow needs, and secrets that only ever come from the uncommitted .env."""

import re
from pathlib import Path

import pytest
import yaml

from workflows import search_attributes

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"postgresql", "temporal-admin-tools", "temporal", "temporal-setup", "temporal-ui",
            "api", "worker"}
ONE_SHOT = {"temporal-admin-tools", "temporal-setup"}
APP = ("api", "worker")
# `${NAME}`, `${NAME:-default}`, `${NAME:?message}`; `$${...}` is an escaped shell variable.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
SECRET_KEY = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|KEY$", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(compose_text) -> dict:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def env(service: dict) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {key: str(value) for key, value in raw.items()}


def depends(service: dict) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def script(service: dict) -> str:
    command = service.get("command")
    return "\n".join(command) if isinstance(command, list) else str(command or "")


def test_every_service_of_the_production_shape_is_there(services):
    assert SERVICES <= set(services)


def test_images_are_pinned_to_a_version(services):
    for name, service in services.items():
        if "image" not in service:
            continue
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: {image} has no fixed tag"
        assert not image.endswith(":latest"), f"{name}: {image}"
    # The schema job must bring the databases to the schema the server version expects.
    server_tag = services["temporal"]["image"].split(":")[1]
    for name in ONE_SHOT:
        assert services[name]["image"] == f"temporalio/admin-tools:{server_tag}"
    assert services["postgresql"]["image"].startswith("postgres:16")
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui:")


def test_api_and_worker_are_built_from_the_repository_dockerfile(services):
    for name in APP:
        build = services[name]["build"]
        if isinstance(build, str):
            build = {"context": build}
        assert Path(build["context"]) == Path(".")
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
    assert (ROOT / "Dockerfile").is_file()


def test_every_long_running_service_has_a_healthcheck_or_waits_for_one(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} runs once and must not restart"
            continue
        waits = "service_healthy" in depends(service).values()
        assert "healthcheck" in service or waits, f"{name} is neither checked nor waiting"
        assert service.get("restart") in ("unless-stopped", "always"), name


def test_conditions_only_name_what_they_can_wait_for(services):
    for name, service in services.items():
        for other, condition in depends(service).items():
            assert other in services, f"{name} depends on unknown {other}"
            assert condition in ("service_healthy", "service_completed_successfully"), \
                f"{name} → {other}: {condition} does not order anything"
            if condition == "service_healthy":
                assert "healthcheck" in services[other], f"{other} has no healthcheck"
            else:
                assert other in ONE_SHOT, f"{other} never completes"


def test_start_order(services):
    assert depends(services["temporal-admin-tools"])["postgresql"] == "service_healthy"
    assert depends(services["temporal"])["temporal-admin-tools"] == "service_completed_successfully"
    assert depends(services["temporal-setup"])["temporal"] == "service_healthy"
    for name in APP:
        needs = depends(services[name])
        assert needs["temporal"] == "service_healthy", name
        assert needs["temporal-setup"] == "service_completed_successfully", name
    assert "pg_isready" in " ".join(services["postgresql"]["healthcheck"]["test"])

    # No cycle: a start order exists.
    started: list[str] = []
    pending = dict(services)
    while pending:
        ready = [n for n, s in pending.items() if set(depends(s)) <= set(started)]
        assert ready, f"dependency cycle among {sorted(pending)}"
        for name in ready:
            started.append(name)
            del pending[name]
    assert started.index("temporal") < started.index("api") < started.index("worker")


def test_schema_job_sets_up_both_stores_on_postgres12(services):
    job = services["temporal-admin-tools"]
    text = script(job)
    assert env(job)["DB"] == "postgres12"
    for verb in ("create", "setup-schema", "update-schema"):
        assert verb in text
    assert "temporal:temporal" in text and "temporal_visibility:visibility" in text
    assert "/etc/temporal/schema/postgresql/v12" in text


def test_server_runs_on_postgres(services):
    server = env(services["temporal"])
    assert server["DB"] == "postgres12"
    assert server["POSTGRES_SEEDS"] == "postgresql"
    assert server["DB_PORT"] == "5432"
    assert server["BIND_ON_IP"] == "0.0.0.0"


def test_namespace_keeps_closed_cases_at_least_a_year(services):
    text = script(services["temporal-setup"])
    assert "addr=temporal:7233" in text
    calls = [line for line in text.splitlines() if "temporal operator" in line]
    assert calls and all("--address" in line for line in calls)
    assert re.search(r"namespace create\b[^\n]*--namespace \"\$\$ns\"", text)
    assert "ns=bihuan" in text
    retentions = re.findall(r"--retention (\d+)d", text)
    assert retentions and all(int(days) >= 365 for days in retentions)
    assert "already exists" in text, "a second run must not fail on what the first created"


def test_setup_registers_every_search_attribute_the_workflow_upserts(services):
    text = script(services["temporal-setup"])
    registered = dict(re.findall(r"--name (\w+) --type (\w+)", text))
    wanted = {key.name: search_attributes.CLI_TYPES[key.indexed_value_type.name]
              for key in search_attributes.ALL_KEYS}
    assert registered == wanted
    assert set(wanted) == {"CaseStage", "CaseTeam", "CaseDistrict", "CaseSource",
                           "CaseCategory", "CaseOverdue"}


def test_api_and_worker_settings(services):
    for name in APP:
        e = env(services[name])
        assert e["BIHUAN_ENVIRONMENT"] == "production"
        assert e["BIHUAN_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert e["BIHUAN_TEMPORAL_NAMESPACE"] == "bihuan"
        assert re.fullmatch(r"postgresql\+psycopg://\$\{\w+[^}]*\}:\$\{\w+[^}]*\}"
                            r"@postgresql:5432/bihuan", e["BIHUAN_LEDGER_URL"])
    assert env(services["api"])["BIHUAN_API_HOST"] == "0.0.0.0"
    api_command = " ".join(services["api"]["command"])
    assert api_command.index("bihuan migrate") < api_command.index("bihuan api")
    assert services["worker"]["command"] == ["bihuan", "worker"]
    # The ledger database is made by the PostgreSQL image on first start.
    assert env(services["postgresql"])["POSTGRES_DB"] == "bihuan"


def test_worker_can_be_scaled(services):
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker
    for name, service in services.items():
        assert "container_name" not in service, f"{name}: fixed names block --scale"


def test_no_secret_is_written_into_the_compose_file(services, compose_text):
    for name, service in services.items():
        for key, value in env(service).items():
            if SECRET_KEY.search(key):
                assert re.fullmatch(r"\$\{\w+(:[-?][^}]*)?\}", value), \
                    f"{name}.{key} must come from a variable, not a literal"
    assert not re.search(r"(?i)password\s*[:=]\s*[\"']?(?!\$\{)\w", compose_text)


def test_env_file_is_ignored_and_the_example_names_every_variable(compose_text):
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in [line.strip() for line in ignored]
    assert ".env" in (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)=", example, re.MULTILINE))
    used = set(VARIABLE.findall(compose_text))
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD"} <= used
    assert used <= defined, f"missing from .env.example: {sorted(used - defined)}"
    assert re.search(r"^POSTGRES_PASSWORD=CHANGE-ME$", example, re.MULTILINE)


def test_dockerfile_runs_as_a_non_root_user_without_dev_extras(dockerfile):
    assert dockerfile[0] == "FROM python:3.11-slim"
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    installs = [line for line in dockerfile if "pip install" in line]
    assert installs
    assert not any(re.search(r"\[[^\]]*dev[^\]]*\]|-e\b|--editable", line) for line in installs)
    assert dockerfile[-1] == 'CMD ["bihuan", "api"]'


def seconds(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)(s|m)", duration).groups()
    return float(value) * (60 if unit == "m" else 1)


def test_health_checks_ask_readiness_and_the_worker_health_command(services):
    api, worker = services["api"], services["worker"]
    assert "/readyz" in " ".join(api["healthcheck"]["test"])
    assert worker["healthcheck"]["test"] == ["CMD", "bihuan", "worker-health"]
    assert int(env(worker)["BIHUAN_WORKER_HEALTH_PORT"]) > 0
    assert env(worker)["BIHUAN_WORKER_METRICS_ADDRESS"].endswith(":9464")
    # Docker's SIGKILL comes after the grace each process gives work in flight.
    assert seconds(api["stop_grace_period"]) > float(env(api)["BIHUAN_API_SHUTDOWN_GRACE_SECONDS"])
    assert seconds(worker["stop_grace_period"]) > float(
        env(worker)["BIHUAN_WORKER_SHUTDOWN_GRACE_SECONDS"])


def interpolated(service: dict, values: dict[str, str]) -> dict[str, str]:
    """The service's environment as compose gives it, with `values` for the .env file."""
    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(3)
        if name in values:
            return values[name]
        assert match.group(2) != ":?", f"{name} is required"
        return default or ""
    pattern = re.compile(r"(?<!\$)\$\{(\w+)(?:(:[-?])([^}]*))?\}")
    return {k: pattern.sub(substitute, v) for k, v in env(service).items()}


def example_values() -> dict[str, str]:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    return dict(re.findall(r"^([A-Za-z_]\w*)=(.*)$", example, re.MULTILINE))


def test_the_example_env_with_its_secrets_set_gives_settings_the_app_starts_with(
        services, monkeypatch):
    from config.settings import Settings
    values = {**example_values(), "BIHUAN_JWT_SECRET": "x" * 48}
    for name in APP:
        for key, value in interpolated(services[name], values).items():
            monkeypatch.setenv(key, value)
        settings = Settings(_env_file=None)
        assert settings.environment == "production"
        assert settings.ledger_url.startswith("postgresql+psycopg://bihuan:")
        assert settings.case_history_event_limit == 2000


def test_the_example_signing_key_is_refused_in_production(services, monkeypatch):
    from config.settings import Settings
    for key, value in interpolated(services["api"], example_values()).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match="BIHUAN_JWT_SECRET"):
        Settings(_env_file=None)
