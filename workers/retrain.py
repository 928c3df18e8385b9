"""The scheduled retrain, now, as a command: on this process, or data-parallel on several
processes or machines through torchrun (`pytorch_models.training.distributed`).

    python -m workers.retrain [--models lightgcn ngcf] [--epochs N]
    torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint HOST:PORT \\
        --rdzv-id retrain -m workers.retrain                      # on each machine

What `workers.tasks.retrain_models` does when beat sends it (`retrain_run`): the settings'
budget, warm starts, the gate, a live tick after a publish; and it takes the same lock, so it
never overlaps a scheduled retrain (rank 0 takes it and tells the others). Under torchrun every
rank needs the database (rank 0 reads the snapshot and sends it to the others) and the models
folder (to warm-start from; rank 0 writes the new versions). docker-compose.yml's
`distributed-retrain` profile runs it on two containers. Prints one JSON line (rank 0): each
model's result, or {"skipped": ...} when a retrain was already running. Exit code 0 either way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django.setup()

from pytorch_models.models.names import SERVED_MODELS  # noqa: E402
from pytorch_models.training import distributed  # noqa: E402
from workers.tasks import RETRAIN_LOCK, RETRAIN_LOCK_S, broker, retrain_run  # noqa: E402

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=SERVED_MODELS, help="default: every model")
    parser.add_argument("--epochs", type=int, help="default: RETRAIN_EPOCHS (and the time budget)")
    args = parser.parse_args(argv)
    ranks = distributed.start("cpu")
    logging.basicConfig(level=logging.INFO if ranks.primary else logging.WARNING,
                        format=f"%(asctime)s rank {ranks.rank} %(name)s %(message)s")
    lock = broker().lock(RETRAIN_LOCK, timeout=RETRAIN_LOCK_S, blocking=False) if ranks.primary else None
    try:
        if not distributed.broadcast_json(bool(lock.acquire()) if lock else None):
            if ranks.primary:
                print(json.dumps({"skipped": f"another retrain holds {RETRAIN_LOCK}"}))
            return
        try:
            results = retrain_run(args.models, args.epochs)
        finally:
            if lock:
                lock.release()
        if ranks.primary:
            print(json.dumps(results))
    finally:
        distributed.stop()


if __name__ == "__main__":
    main()
