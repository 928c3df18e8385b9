"""Production settings and the Docker build: the image holds no .env file, and Django's
deployment checks find nothing with exactly the environment docker-compose.yml gives the app.
`make demo` and the tests run with DEBUG off too, over plain http on loopback (.env.dev), with a
secret key the checkout generates once; debugging is opt-in (DJANGO_DEBUG=1)."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}")


def compose_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """A service's environment as docker compose resolves it when the shell and `.env` set
    exactly `variables`: `${NAME:-default}`, `${NAME}` and `$$`."""
    def resolve(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return variables.get(match.group(1)) or match.group(2) or ""

    return {name: _VARIABLE.sub(resolve, str(value))
            for name, value in COMPOSE["services"][service]["environment"].items()}


def _pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go's filepath.Match plus `**`) as a regex on a relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        else:
            out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(out + r"\Z")


def dockerignored(path: str, dockerignore: str) -> bool:
    """Whether `docker build` leaves `path` out of the context: the last pattern that matches
    the path or a folder above it decides, and a `!` pattern takes it back in."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for line in dockerignore.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        regex = _pattern_regex(line.removeprefix("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not line.startswith("!")
    return ignored


def build_context() -> list[str]:
    """The tracked files `COPY . .` puts in the image."""
    dockerignore = (ROOT / ".dockerignore").read_text()
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split("\0")
    return [path for path in tracked if path and not dockerignored(path, dockerignore)]


@pytest.mark.parametrize(("path", "ignored"), [
    (".env.dev", True), (".env", True), ("var/models/x", True), ("movie/__pycache__/a.pyc", True),
    ("manage.py", False), ("movie/static/movie/app.css", False), ("devstack/app.py", False),
])
def test_dockerignore_rules_as_docker_reads_them(path, ignored):
    assert dockerignored(path, (ROOT / ".dockerignore").read_text()) == ignored


def test_no_env_file_reaches_the_image():
    context = build_context()
    assert "manage.py" in context and "webapp/settings.py" in context
    assert [path for path in context if Path(path).name.startswith(".env")] == []
    copies = [line for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.split()[:1] in (["COPY"], ["ADD"])]
    assert copies and not any(".env" in line for line in copies)


def test_deploy_checks_pass_in_the_image_with_the_compose_environment(tmp_path):
    """`manage.py check --deploy` in a copy of the build context (no .env.dev), with the web
    service's environment from docker-compose.yml and a generated secret key."""
    for path in build_context():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, tmp_path / path)
    env = compose_environment("web", {"DJANGO_SECRET_KEY": secrets.token_urlsafe(50)})
    assert env["DJANGO_DEBUG"] == "0"

    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=tmp_path, env={"PATH": str(Path(sys.executable).parent), **env},
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_every_app_service_gets_the_same_security_settings():
    app = COMPOSE["x-app"]["environment"]
    for name, service in COMPOSE["services"].items():
        if service.get("image") == "cinegraph:latest":
            assert {k: service["environment"].get(k) for k in app} == app, name


def test_dev_and_the_tests_stay_on_plain_http():
    # .env.dev says DJANGO_HTTPS=0, and with it go the redirect, HSTS and secure-only cookies:
    # `make demo` on http://127.0.0.1:8000, the test client and the browser test need that.
    assert not settings.SECURE_SSL_REDIRECT
    assert not settings.SESSION_COOKIE_SECURE and not settings.CSRF_COOKIE_SECURE
    assert settings.SECURE_HSTS_SECONDS == 0


def _settings_in(cwd: Path, env: dict[str, str], *names: str) -> subprocess.CompletedProcess:
    """Import the settings in a fresh process under `env` alone; print the named ones as JSON."""
    code = ("import json; from django.conf import settings; "
            f"print(json.dumps({{n: str(getattr(settings, n)) for n in {list(names)!r}}}))")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={"PATH": str(Path(sys.executable).parent),
                               "DJANGO_SETTINGS_MODULE": "webapp.settings", "PYTHONPATH": str(cwd), **env})


def test_the_demo_runs_with_debug_off_on_plain_http_and_debug_is_opt_in(tmp_path):
    from devstack.app import app_env

    demo = ({k: v for k, v in app_env({}).items() if k != "DJANGO_SECRET_KEY"}
            | {"CINEGRAPH_VAR_DIR": str(tmp_path)})
    names = ("DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "SECURE_HSTS_SECONDS")
    off = _settings_in(ROOT, demo, *names)
    on = _settings_in(ROOT, {**demo, "DJANGO_DEBUG": "1"}, "DEBUG")

    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout) == {"DEBUG": "False", "SECURE_SSL_REDIRECT": "False",
                                      "SESSION_COOKIE_SECURE": "False", "SECURE_HSTS_SECONDS": "0"}
    assert json.loads(on.stdout) == {"DEBUG": "True"}


def test_a_checkout_signs_with_a_secret_it_generated_once_and_kept_private(tmp_path):
    env = {"CINEGRAPH_VAR_DIR": str(tmp_path)}
    first, second = (_settings_in(ROOT, env, "SECRET_KEY") for _ in range(2))
    given = _settings_in(ROOT, {"CINEGRAPH_VAR_DIR": str(tmp_path / "other"), "DJANGO_SECRET_KEY": "s" * 50},
                         "SECRET_KEY")

    assert first.returncode == 0, first.stderr
    secret = json.loads(first.stdout)["SECRET_KEY"]
    assert len(secret) >= 50 and secret == json.loads(second.stdout)["SECRET_KEY"]
    assert (tmp_path / "secret-key").read_text() == secret
    assert (tmp_path / "secret-key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret-key"]  # no temporary file left
    assert json.loads(given.stdout)["SECRET_KEY"] == "s" * 50 and not (tmp_path / "other").exists()
    assert secret not in (ROOT / ".env.dev").read_text()


def test_without_env_dev_the_settings_want_a_secret_from_the_environment(tmp_path):
    for path in build_context():
        if path.startswith(("webapp/", "pytorch_models/")) or path == "manage.py":
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, tmp_path / path)

    result = _settings_in(tmp_path, {"CINEGRAPH_VAR_DIR": str(tmp_path / "var")}, "SECRET_KEY")

    assert result.returncode != 0 and "DJANGO_SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "var").exists()


def test_static_files_are_served_with_debug_off_once_collected(tmp_path, db):
    from django.core.management import call_command
    from django.test import Client, override_settings

    with override_settings(DEBUG=False, STATIC_ROOT=tmp_path, WHITENOISE_USE_FINDERS=False,
                           WHITENOISE_AUTOREFRESH=False):
        call_command("collectstatic", "--noinput", verbosity=0)
        response = Client().get("/static/movie/app.css")  # a new client: WhiteNoise reads STATIC_ROOT

        assert response.status_code == 200
        assert b"".join(response.streaming_content) == (ROOT / "movie/static/movie/app.css").read_bytes()


# Jobs that run to their end: the init, and the retrain on two containers (its own profile).
ONE_OFF = {"init"} | {name for name, service in COMPOSE["services"].items()
                      if "distributed-retrain" in service.get("profiles", ())}


@pytest.mark.parametrize("name", [name for name in COMPOSE["services"] if name not in ONE_OFF])
def test_every_long_running_service_restarts_and_has_a_health_check(name):
    service = COMPOSE["services"][name]
    assert service.get("restart") == "unless-stopped"
    test = service.get("healthcheck", {}).get("test")
    assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def test_the_distributed_retrain_is_two_torchrun_ranks_that_meet_at_the_first():
    ranks = sorted(ONE_OFF - {"init"})
    assert ranks == ["retrain-rank-a", "retrain-rank-b"]
    for name in ranks:
        service = COMPOSE["services"][name]
        command = service["command"]
        assert service["restart"] == "no" and service["hostname"] == name
        assert command[0] == "torchrun" and command[-2:] == ["-m", "workers.retrain"]
        assert command[command.index("--nnodes") + 1] == "2"
        assert command[command.index("--rdzv-endpoint") + 1].split(":")[0] == ranks[0]


def test_init_runs_once_and_the_app_waits_for_it():
    assert COMPOSE["services"]["init"]["restart"] == "no"
    for name, service in COMPOSE["services"].items():
        if service.get("image") == "cinegraph:latest" and name != "init":
            assert service["depends_on"]["init"] == {"condition": "service_completed_successfully"}, name
