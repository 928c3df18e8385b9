"""`manage.py import_movielens` of a big release into a scratch MariaDB database: wall time, CPU,
peak memory of the import process, and what a rerun of the finished release costs.

    python -m benchmarks.synthetic_movielens /tmp/ml-5m --ratings 5000000
    python -m benchmarks.import_scale /tmp/ml-5m --database mysql://root@127.0.0.1:3306/cg_scale_a

Each run drops and recreates the scratch database (its name must contain "scale" or "scratch":
this benchmark drops it), migrates it, then imports the release in a subprocess; peak memory is
the child's own maximum resident set (wait4), the server's memory is not counted. The rerun
imports the same folder again (its ratings are not read: the release is known). Prints a table,
the calibration loop (benchmarks.pages.calibration_ms), the 25M-rating figure extrapolated
linearly from this release's rate and what it would be on a host 1.5x slower; the last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

from benchmarks.pages import calibration_ms
from pytorch_models.data.movielens import release_detect
from pytorch_models.data.movielens_ratings import ratings_chunks

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATINGS, TARGET_S, TARGET_MB = 25_000_095, 15 * 60, 3 * 1024  # issue 23: ml-25m in 15 min, < 3 GB


def database_reset(url: str) -> None:
    import MySQLdb

    parts = urlparse(url)
    name = parts.path.lstrip("/")
    if "scale" not in name and "scratch" not in name:
        raise SystemExit(f"refusing to drop {name!r}: name a scratch database (with 'scale' or 'scratch')")
    server = MySQLdb.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                             user=unquote(parts.username or "root"), password=unquote(parts.password or ""))
    try:
        cursor = server.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        server.close()


def managed(args: list[str], url: str, env: Mapping[str, str] | None = None) -> dict[str, float]:
    """Run manage.py with DATABASE_URL=url (and `env` on top of the environment); wall seconds,
    CPU seconds and peak RSS (MB) of it."""
    env = {**os.environ, **(env or {}), "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} exited {child.returncode}")
    return {"wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release", type=Path, help="folder of the release to import")
    parser.add_argument("--database", required=True, help="mysql:// URL of a scratch database (dropped!)")
    parser.add_argument("--runs", type=int, default=1, help="fresh imports; the median is reported")
    args = parser.parse_args()
    ratings = sum(len(chunk) for chunk in ratings_chunks(release_detect(args.release)))
    calibration = calibration_ms()
    imports, reruns, startups = [], [], []
    for _ in range(args.runs):
        database_reset(args.database)
        managed(["migrate", "--verbosity", "0"], args.database)
        startups.append(managed(["check", "--verbosity", "0"], args.database))  # the baseline: start-up
        imports.append(managed(["import_movielens", str(args.release)], args.database))
        reruns.append(managed(["import_movielens", str(args.release), "--verbosity", "0"], args.database))
    median, rerun, startup = ({key: statistics.median(run[key] for run in runs) for key in runs[0]}
                              for runs in (imports, reruns, startups))
    rate = ratings / max(0.1, median["wall_s"] - startup["wall_s"])
    projected = startup["wall_s"] + TARGET_RATINGS / rate
    database = urlparse(args.database).path.lstrip("/")
    print(f"\nimport of {args.release} ({ratings:,} ratings) into {database}, median of {args.runs}")
    print(f"{'':<28}{'wall s':>9}{'CPU s':>9}{'peak MB':>9}{'ratings/s':>11}")
    rows = (("start-up (manage.py check)", startup), ("import", median), ("rerun (finished)", rerun))
    for label, run in rows:
        print(f"{label:<28}{run['wall_s']:>9.1f}{run['cpu_s']:>9.1f}{run['peak_mb']:>9.0f}"
              + (f"{rate:>11,.0f}" if run is median else ""))
    print(f"ratings/s: after start-up. 25M ratings at this rate: {projected / 60:.1f} min (bar "
          f"{TARGET_S / 60:.0f} min); on a host 1.5x slower {1.5 * projected / 60:.1f} min")
    print(f"calibration: a fixed pure-Python loop took {calibration:.1f} ms of CPU")
    print(json.dumps({"release": str(args.release), "ratings": ratings, "runs": args.runs, "startup": startup,
                      "import": median, "rerun": rerun, "ratings_per_s": round(rate),
                      "projected_25m_s": round(projected),
                      "projected_25m_s_slower_host": round(1.5 * projected),
                      "calibration_ms": round(calibration, 1)}))


if __name__ == "__main__":
    main()
