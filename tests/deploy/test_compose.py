"""``deploy/docker-compose.yml`` and its files agree with each other and with the real CLI
(no Docker needed: the files are parsed and cross-checked)."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from agents.apache_kafka import SHARED_SERVER_PROPERTIES, kafka_version
from agents.cli import cli
from agents.connection import read_properties_file
from agents.settings import TopicNames
from streams.inference import InferenceConfig
from tests.deploy.conftest import DEPLOY, REPO

COMPOSE = DEPLOY / "docker-compose.yml"
_DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with every variable unset."""
    return _DEFAULTED.sub(lambda m: m[2], value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def worker_params(compose: dict[str, Any]) -> dict[str, Any]:
    """The worker service's command, parsed by the CLI's own click command."""
    command = [interpolate(str(arg)) for arg in compose["services"]["worker"]["command"]]
    assert command[0] == "worker"
    worker = cli.commands["worker"]
    with worker.make_context("worker", command[1:]) as ctx:
        return dict(ctx.params)


def test_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= {"kafka", "worker", "prometheus", "grafana"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    build = services["worker"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert "ENTRYPOINT [\"assetwatch\"]" in (DEPLOY / "Dockerfile").read_text()


def test_kafka_runs_in_kraft_mode_with_listeners_for_the_compose_network_and_the_host(
    compose: dict[str, Any]
) -> None:
    kafka = compose["services"]["kafka"]
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env)
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(advertised) <= set(protocols) and env["KAFKA_CONTROLLER_LISTENER_NAMES"] in protocols
    # the workers reach the broker at the internal listener; the host at the published one
    assert worker_params(compose)["broker"] in advertised.values()
    host_port = next(addr.split(":")[1] for addr in advertised.values() if addr.startswith("localhost:"))
    assert f"{host_port}:{host_port}" in kafka["ports"]


def test_kafka_has_a_valid_kraft_cluster_id_and_the_tested_broker_settings(
    compose: dict[str, Any]
) -> None:
    kafka = compose["services"]["kafka"]
    env = environment(kafka)
    # KRaft formats its storage only with 16 bytes in URL-safe base64 (22 characters)
    cluster_id = interpolate(env["CLUSTER_ID"])
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 and len(cluster_id) == 22
    # the image runs the version the Apache Kafka test tier runs, with the same settings file
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    mounts = {interpolate(v).split(":")[1]: interpolate(v).split(":")[0] for v in kafka["volumes"]}
    shared = mounts["/mnt/shared/config/server.properties"]
    assert (COMPOSE.parent / shared).resolve() == SHARED_SERVER_PROPERTIES
    # an environment variable would override the file: none may say otherwise than the file
    settings = read_properties_file(SHARED_SERVER_PROPERTIES)
    from_env = {k[len("KAFKA_"):].lower().replace("_", "."): v for k, v in env.items()
                if k.startswith("KAFKA_")}
    assert not set(settings) & set(from_env), set(settings) & set(from_env)
    assert settings["auto.create.topics.enable"] == "false"  # workers create their topics
    # the data volume is where the broker writes its log
    assert from_env["log.dirs"] in mounts and mounts[from_env["log.dirs"]] == "kafka-data"


def test_the_worker_command_is_the_real_cli_and_scales(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    params = worker_params(compose)
    # chosen by the kind of broker: normal produce batches on Apache Kafka
    assert params["one_record_per_batch"] is None
    assert params["partitions"] >= 1
    # scalable: no fixed name, no host port
    assert "container_name" not in worker and "ports" not in worker
    assert environment(worker)["ASSETWATCH_WEB_HOST"] == "0.0.0.0"
    assert str(params["web_port"]) in [str(p) for p in worker["expose"]]
    mounts = {interpolate(v).split(":")[1]: interpolate(v).split(":")[0] for v in worker["volumes"]}
    assert mounts[str(params["inferences_file"])] == "./inferences.json"
    assert str(params["models_dir"]) in mounts
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_the_example_inference_file_scores_the_default_telemetry_topic() -> None:
    items = orjson.loads((DEPLOY / "inferences.example.json").read_bytes())
    configs = [InferenceConfig.from_dict(d) for d in items]
    assert [c.topic for c in configs] == [TopicNames().telemetry] * len(configs)


def test_prometheus_finds_every_worker_replica_by_dns(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    sd = jobs["assetwatch-workers"]["dns_sd_configs"][0]
    assert sd["names"] == ["worker"] and sd["type"] == "A"
    assert sd["port"] == worker_params(compose)["web_port"]
    mount = compose["services"]["prometheus"]["volumes"][0].split(":")
    assert (COMPOSE.parent / mount[0]).resolve() == DEPLOY / "prometheus" / "prometheus.yml"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="no promtool on PATH")
def test_prometheus_accepts_the_config() -> None:
    done = subprocess.run(["promtool", "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml")],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_has_no_default_password_and_no_anonymous_access(compose: dict[str, Any]) -> None:
    env = environment(compose["services"]["grafana"])
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    password = env["GF_SECURITY_ADMIN_PASSWORD"]
    # ${VAR:?message}: compose refuses to start while the variable is unset
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password
    for service in compose["services"].values():
        assert not any(":-" in v and "PASSWORD" in k for k, v in environment(service).items())


def test_grafana_provisions_the_datasource_the_dashboards_use(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[1]: (COMPOSE.parent / v.split(":")[0]).resolve()
              for v in grafana["volumes"] if v.startswith(".")}
    provisioning = mounts["/etc/grafana/provisioning"]
    dashboards_dir = mounts["/var/lib/grafana/dashboards"]
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "assetwatch.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    files = sorted(dashboards_dir.glob("*.json"))
    assert {f.name for f in files} == {"assetwatch-overview.json", "assetwatch-inference.json"}
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).name in {f.name for f in files}
    uids = set()
    for f in files:
        dashboard = orjson.loads(f.read_bytes())
        uids.add(dashboard["uid"])
        nested = [child for panel in dashboard["panels"] for child in panel.get("panels", [])]
        for panel in dashboard["panels"] + nested:  # a collapsed row holds its panels
            if panel["type"] == "row":  # a heading: no query of its own
                assert "targets" not in panel and "datasource" not in panel, (f.name, panel["title"])
                continue
            assert panel["datasource"]["uid"] == source["uid"], (f.name, panel["title"])
            assert panel["targets"], (f.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == source["uid"], (f.name, panel["title"])
        cells = [(x, y) for panel in dashboard["panels"]  # the top level's layout: no overlap
                 for g in [panel["gridPos"]] for x in range(g["x"], g["x"] + g["w"])
                 for y in range(g["y"], g["y"] + g["h"])]
        assert len(cells) == len(set(cells)) and all(0 <= x < 24 for x, _ in cells), f.name
    assert len(uids) == len(files)
    drill = orjson.loads((dashboards_dir / "assetwatch-inference.json").read_bytes())
    assert [v["name"] for v in drill["templating"]["list"]] == ["inference"]


def test_the_readme_names_the_commands_it_documents() -> None:
    readme = (DEPLOY / "README.md").read_text()
    assert "--scale worker=" in readme and "docker compose" in readme
    for path in re.findall(r"`(deploy/[\w./-]+)`", readme):
        assert (REPO / path).exists(), path


def test_the_worker_has_no_default_api_token_and_no_host_port(compose: dict[str, Any]) -> None:
    """REST commands stay refused until the operator sets a token; the web port is reached
    over the compose network only (Prometheus), never published on the host."""
    worker = compose["services"]["worker"]
    assert environment(worker)["ASSETWATCH_API_TOKEN"] == "${ASSETWATCH_API_TOKEN:-}"
    assert "ports" not in worker
    env_files = [f["path"] for f in worker["env_file"]]
    assert "./hook-secrets.env" in env_files
    assert all(not f["required"] for f in worker["env_file"])
