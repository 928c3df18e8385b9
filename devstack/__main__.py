"""The local Cinegraph stack: start, wait for and stop every service on free ports.

    python -m devstack demo       # services, migrate/import, the quick models, the app; GNNs train after
    python -m devstack services   # only Kafka, DynamoDB, Redis; prints the env to export
    python -m devstack prepare    # create topic + table at KAFKA_BOOTSTRAP/DYNAMODB_ENDPOINT

Every process is a child of this one with its PID kept and its output in var/log/<name>.log.
Ctrl-C or SIGTERM reaches only this process (each child has its own session), which stops
the children in reverse start order.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from devstack import app, services
from devstack.process import LOG_DIR, ROOT, VAR, Process, StackError, dev_env, port_is_free, wait_until
from devstack.supervisor import Stack
from pytorch_models.models.names import (  # names only: no torch
    GRADIENT_TRAINED_MODELS,
    POPULAR,
    SERVED_MODELS,
)

SERVICES_ENV = VAR / "demo-services.env"  # the running demo's service addresses


def ensure_node_modules() -> None:
    if (ROOT / "node_modules" / ".bin" / "dynalite").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise StackError("npm is missing: install Node 20 and npm (Debian: apt-get install nodejs npm, "
                         "or run .ci/run as root)")
    print("node_modules missing: npm ci", flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)


def demo() -> None:
    started = time.monotonic()
    port = int(os.environ.get("PORT", "8000"))
    if not port_is_free(port):
        raise StackError(f"port {port} is already in use on 127.0.0.1: stop what holds it "
                         f"(`ss -ltnp 'sport = :{port}'`) or choose another port, e.g. `PORT=8001 make demo`")
    ensure_node_modules()
    defaults = dev_env()
    model_dir = ROOT / (defaults.get("MODEL_DIR") or VAR / "models")  # an absolute path stays as it is
    # Any MovieLens release folder (benchmarks.scale starts the demo on generated ones, each with
    # its own DATABASE_URL and MODEL_DIR); importing one already imported reads no ratings.
    release = ROOT / (defaults.get("DEMO_RELEASE") or "data/ml-latest-small")
    with Stack() as stack:
        found = services.start_services(
            stack, kafka_max_rss_mb=int(os.environ.get("KAFKA_MAX_RSS_MB") or services.KAFKA_MAX_RSS_MB))
        env = app.app_env({**found, "MODEL_DIR": str(model_dir),
                           "DATABASE_URL": defaults.get("DATABASE_URL", "")})
        # Where tools (benchmarks.click_load, manage.py by hand) find the services.
        SERVICES_ENV.write_text("".join(f"{k}={v}\n" for k, v in found.items()))
        print(f"services up in {time.monotonic() - started:.1f} s", flush=True)
        # Popular and the graph filter train in seconds and the site serves them; the GNNs take
        # minutes (316 s on this 2-core machine), SASRec 265 s, and each joins once the site is up.
        missing = models_without_version(model_dir)
        timings = {}
        for name, args in (("migrate", ("migrate", "--noinput")),
                           ("import", ("import_movielens", str(release))),
                           ("collectstatic", ("collectstatic", "--noinput"))):
            print(f"  manage.py {' '.join(args)} ...", flush=True)
            timings[name] = app.manage(env, *args)
        quick = {f"train-{m}": ("train", "--model", m) for m in missing if m not in GRADIENT_TRAINED_MODELS}
        if quick:
            print(f"  manage.py {' and '.join(' '.join(args) for args in quick.values())}, side by side ...",
                  flush=True)
            timings["train " + " and ".join(args[-1] for args in quick.values())] = app.manage_together(
                env, quick)
        print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), flush=True)
        slow = [m for m in missing if m in GRADIENT_TRAINED_MODELS]
        # No scheduled retrain until every GNN has a first version: the retrain warm-starts from
        # the live version, and with none it would train the model from scratch a second time,
        # beside the trainer (a beat schedule kept in var/ from an earlier run fires at once).
        beat = start_app(stack, env, port=port, live_workers=int(os.environ.get("WORKERS") or 1),
                         beat_env={**env, "RETRAIN_EVERY": "0"} if slow else env)
        print(f"\n{stack.table()}\n\nUp in {time.monotonic() - started:.1f} s. "
              f"Open http://127.0.0.1:{port} — Ctrl-C stops everything", flush=True)
        if slow:
            print(f"\nTraining {', '.join(slow)} in the background, one at a time (about 10 minutes in all): "
                  "the site serves popular and the graph filter meanwhile, and each model joins as it is "
                  f"published. Progress (also in {LOG_DIR.relative_to(ROOT)}/train.log):\n", flush=True)

            def retrain_from_now_on():
                beat.env_update({"RETRAIN_EVERY": env.get("RETRAIN_EVERY", "0")})
                stack.relaunch(beat)

            stack.start(app.trainer(env), restart=True, wait=False, once=True, then=retrain_from_now_on,
                        echo=sys.stdout.buffer)
        stack.watch()


def models_without_version(model_dir: Path) -> list[str]:
    """The models with no published version under `model_dir/<model>/` (the registry's layout:
    a folder per version, hidden while it is written), popular first."""
    def published(folder: Path) -> bool:
        return folder.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())

    return sorted((m for m in SERVED_MODELS if not published(model_dir / m)), key=lambda m: m != POPULAR)


def start_app(stack: Stack, env: dict[str, str], *, port: int, live_workers: int,
              beat_env: dict[str, str] | None = None) -> Process:
    """Live and retrain workers, beat (with `beat_env`, env unless given), consumer and web,
    launched together, each restarted when it dies; returns beat once all are ready."""
    launched = [stack.start(app.celery_worker(env, index=i + 1), restart=True, wait=False)
                for i in range(live_workers)]
    launched.append(stack.start(app.celery_worker(env, queue="retrain"), restart=True, wait=False))
    launched.append(stack.start(app.celery_worker(env, queue="upkeep"), restart=True, wait=False))
    beat = stack.start(app.celery_beat(beat_env or env), restart=True, wait=False)
    launched.append(stack.start(app.click_consumer(env), restart=True, wait=False))
    launched.append(stack.start(app.web_server(env, port), restart=True, wait=False))
    for proc in launched:
        proc.wait_ready()
    return beat


def services_only() -> None:
    with Stack() as stack:
        found = services.start_services(stack)
        print(stack.table() + "\n\n# point manage.py / celery at them:")
        for key, value in found.items():
            print(f"export {key}={value}")
        print("# Ctrl-C stops everything", flush=True)
        stack.watch()


def prepare() -> None:
    """Create the topics and tables where the environment points (docker-compose init)."""
    env = dev_env()
    bootstrap, endpoint = env["KAFKA_BOOTSTRAP"], env.get("DYNAMODB_ENDPOINT") or None
    wait_until(lambda: services.kafka_ready(bootstrap), timeout=120, what="kafka")
    services.ensure_kafka_topic(bootstrap, env.get("KAFKA_TOPIC") or "clicks")
    services.ensure_kafka_topic(bootstrap, env.get("KAFKA_IMPRESSIONS_TOPIC") or "impressions")
    table = env.get("DYNAMODB_TABLE") or "clicklog"
    wait_until(lambda: services.ensure_clicklog_table(endpoint, table) in (True, False), timeout=120,
               what="dynamodb")
    services.ensure_impressions_table(endpoint, env.get("DYNAMODB_IMPRESSIONS_TABLE") or "impressions")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("demo", "services", "prepare"))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # connection-refused noise at start
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        {"demo": demo, "services": services_only, "prepare": prepare}[args.command]()
    except KeyboardInterrupt:
        print("\nstopped; every process this script started has exited", flush=True)
        return 0
    except StackError as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
