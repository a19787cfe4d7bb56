"""compose.yaml: two replicas on one PostgreSQL database, sharing every secret, each health
checked on the port it serves.

With the docker client and its compose plugin, `docker compose config` resolves the file
(variables from a test .env) and the checks run on its answer; without them (no engine is
needed either way) they run on the YAML itself, where each value is still a reference.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"

# What the replicas must share, and the value each gets from the test .env.
SHARED = {
    "BRIDGE_DATABASE__URL": None,  # built from POSTGRES_PASSWORD
    "BRIDGE_SECURITY__API_TOKEN": "BRIDGE_API_TOKEN",
    "BRIDGE_SECURITY__ADMIN_TOKEN": "BRIDGE_ADMIN_TOKEN",
    "BRIDGE_SECURITY__WEBHOOK_SECRET": "BRIDGE_WEBHOOK_SECRET",
    "BRIDGE_SECURITY__CONSOLE_SECRET": "BRIDGE_CONSOLE_SECRET",
    "BRIDGE_SERVER__PUBLIC_URL": "BRIDGE_PUBLIC_URL",
}
TEST_ENV = {
    "POSTGRES_PASSWORD": "pw-compose-test",
    "BRIDGE_API_TOKEN": "api-compose-test",
    "BRIDGE_ADMIN_TOKEN": "admin-compose-test",
    "BRIDGE_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "BRIDGE_CONSOLE_SECRET": "console-compose-test",
    "BRIDGE_PUBLIC_URL": "https://bridge.example.com",
}


def _compose_plugin() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    found = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    return found.returncode == 0


def _resolved(tmp_path: Path) -> dict[str, Any]:
    """`docker compose config` of the file, with the test .env."""
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in TEST_ENV.items()))
    command = ["docker", "compose", "-f", str(COMPOSE), "--env-file", str(env_file)]
    answer = subprocess.run(
        [*command, "config", "--format", "json"],
        capture_output=True,
        check=True,
        text=True,
    )
    loaded: dict[str, Any] = json.loads(answer.stdout)
    return loaded


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):  # the KEY=value form
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def _container_ports(service: dict[str, Any]) -> set[str]:
    ports = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):  # docker compose config's long form
            ports.add(str(port["target"]))
        else:
            ports.add(str(port).rsplit(":", 1)[-1].split("/")[0])
    return ports


def check(compose: dict[str, Any], *, resolved: bool) -> None:
    """The properties compose.yaml must have, on its YAML or on docker's resolution."""
    services = compose["services"]
    replicas = {n: s for n, s in services.items() if "BRIDGE_DATABASE__URL" in _environment(s)}
    assert len(replicas) == 2, sorted(replicas)
    environments = [_environment(service) for service in replicas.values()]
    first, second = environments
    for key in SHARED:
        assert key in first, key
        assert first[key] == second[key], key

    # One PostgreSQL database, the compose file's own, that the replicas wait for.
    url = first["BRIDGE_DATABASE__URL"]
    assert re.fullmatch(r"postgresql\+asyncpg://bridge:[^@]+@db:5432/bridge", url), url
    assert services["db"]["image"].startswith("postgres:")
    assert "healthcheck" in services["db"]
    for service in replicas.values():
        assert service["depends_on"]["db"]["condition"] == "service_healthy"

    # Each replica is published on the port it serves, which the image's health check asks.
    for name, service in replicas.items():
        port = _environment(service)["BRIDGE_SERVER__PORT"]
        assert _container_ports(service) == {port}, name
        assert "healthcheck" not in service or "disable" not in service["healthcheck"], name

    for key, variable in SHARED.items():
        value = first[key]
        if resolved:
            expected = TEST_ENV[variable] if variable else None
            assert expected is None or value == expected, key
        else:
            # No secret is written in the file: each is a variable the user must set.
            reference = "${POSTGRES_PASSWORD:?" if variable is None else "${" + variable
            assert reference in value, key
            if key.startswith("BRIDGE_SECURITY__") or variable is None:
                assert ":?" in value, f"{key} must be required, so no replica makes its own"


def test_compose_file_runs_two_replicas_sharing_database_and_secrets(tmp_path: Path) -> None:
    if _compose_plugin():
        check(_resolved(tmp_path), resolved=True)
    check(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")), resolved=False)


def test_env_example_names_every_variable_the_file_needs() -> None:
    needed = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text(encoding="utf-8")))
    listed = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    assert needed == listed


@pytest.mark.parametrize("secret_key", ["BRIDGE_SECURITY__WEBHOOK_SECRET", "BRIDGE_DATABASE__URL"])
def test_the_check_fails_when_a_replica_differs(secret_key: str) -> None:
    """The check above can fail: one replica with its own secret or database is caught."""
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    replica = compose["services"]["bridge-2"]
    replica["environment"] = {**replica["environment"], secret_key: "${SOMETHING_ELSE:?x}"}
    with pytest.raises(AssertionError, match=re.escape(secret_key)):
        check(compose, resolved=False)
