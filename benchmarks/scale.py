"""How each cost grows with the ratings, from ml-latest-small to 25M generated ratings.

Each release is imported, fitted and served by the demo stack, then loaded:

    python -m benchmarks.scale [--sizes small 1m 5m] [--work /tmp/cinegraph-scale]
                               [--click-rate 100] [--click-seconds 60] [--out var/scale/scale.png]

Per size (`benchmarks.scale_stack`): the release (ml-latest-small as shipped, else
`benchmarks.synthetic_movielens` into --work, once per seed and reused), a fresh import into
the scratch database `cg_scale_<size>` on --server (dropped first: wall time and peak memory of
`manage.py import_movielens`), `manage.py train --missing --epochs 0` into the size's own
MODEL_DIR under --work (the GNNs' spectral start: this measures cost, not quality; a model with
a version there already is reused), a visitor's fold-in per live model (`benchmarks.live_cost`,
one thread), then `python -m devstack demo` on that database, release and model folder, with
`benchmarks.pages` (p50/p95 of every page at --connections) and `benchmarks.click_load`
(202 -> fresh at --click-rate) against it, the CPU ms per accepted click of each of the demo's
roles, and the largest web process's RSS. `--sizes ... 25m` is the goals' run, and a long one (issue 23
projected its import alone at 19 minutes).

Goals at 25M ratings (issue 23, item 5): every page p95 <= 50 ms and >= 300 req/s at 16
connections, the API >= 600 req/s; a visitor's fold-in <= 2x its ml-latest-small cost;
freshness p95 <= 1 s at 100 clicks/s; web RSS <= 1.5 GB a process; import <= 15 min. They are
judged for every size measured. Prints a table per size, one across sizes, the calibration
loop and what the CPU-bound figures would be on a host 1.5x slower; draws each cost against
the ratings, log-log, into --out; the children's own tables go beside it, in <size>/; the last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tqdm import tqdm

from benchmarks.import_scale import TARGET_S as IMPORT_S
from benchmarks.pages import PAGE_P95_MS, calibration_ms
from benchmarks.scale_stack import (
    FOLD_IN_MODELS,
    SIZES,
    fold_in_ms,
    ratings_in,
    release_import,
    size_prepare,
    stack_measure,
    tables_fit,
)

FOLD_IN_RATIO = 2.0  # a visitor's fold-in at most this many times its ml-latest-small cost
FRESH_P95_S = 1.0
WEB_RSS_MB = 1.5 * 1024
SLOWER = 1.5  # the slower host the figures are restated for
STEPS = 5  # per size: release, import, fit, fold-in, the stack under load


def size_run(name: str, args: argparse.Namespace, progress: tqdm) -> dict:
    """Every figure of one size; `progress` advances a step at a time."""
    def step(what: str) -> None:
        progress.set_postfix_str(f"{name}: {what}")

    step("release")
    size = size_prepare(name, work=args.work, server=args.server, seed=args.seed)
    row = {"size": name, "ratings": ratings_in(size.release), "release": str(size.release),
           "database": size.database.rsplit("/", 1)[-1], "model_dir": str(size.model_dir)}
    progress.update()
    step("import")
    row["import"] = release_import(size)
    progress.update()
    step("fit")
    row["fit"] = tables_fit(size)
    progress.update()
    step("fold-in")
    row["fold_in_ms"] = fold_in_ms(size, args.fold_in_runs)
    progress.update()
    step("calibration, pages and clicks")
    row["calibration_ms"] = round(calibration_ms(), 1)
    row.update(stack_measure(size, args, args.out.parent / name))
    progress.update()
    return row


def goals(row: dict, small: dict | None) -> dict[str, bool | None]:
    """Issue 23's goals for this size (they are set at 25M); the fold-in's needs ml-latest-small."""
    fold_in = None if small is None or small is row else all(
        row["fold_in_ms"][m] <= FOLD_IN_RATIO * small["fold_in_ms"][m] for m in FOLD_IN_MODELS)
    return {**row["page_goals"], f"fold_in_le_{FOLD_IN_RATIO:g}x_small": fold_in,
            f"fresh_p95_le_{FRESH_P95_S:g}s": row["clicks"]["fresh_p95_s"] <= FRESH_P95_S,
            f"web_rss_le_{WEB_RSS_MB:g}MB": row["web_rss_mb"] <= WEB_RSS_MB,
            f"import_le_{IMPORT_S // 60}min": row["import"]["wall_s"] <= IMPORT_S}


def verdict(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "NO"


def size_print(row: dict, args: argparse.Namespace) -> None:
    fit = row["fit"]
    print(f"\n== {row['size']}: {row['ratings']:,} ratings ({row['release']}), database {row['database']}, "
          f"tables in {row['model_dir']}")
    print(f"import: {row['import']['wall_s']:.1f} s wall, {row['import']['cpu_s']:.1f} s CPU, peak "
          f"{row['import']['peak_mb']:.0f} MB; fit (train --missing --epochs 0): "
          + (f"{fit['wall_s']:.1f} s, peak {fit['peak_mb']:.0f} MB" if fit else "every model had a version"))
    print(f"{'page':<16}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'req/s':>8}{'errors':>7}{'server ms':>10}"
          f"{'goal':>6}")
    for page, figures in row["pages"].items():
        print(f"{page:<16}{figures['p50_ms']:>8.1f}{figures['p95_ms']:>8.1f}{figures['p99_ms']:>8.1f}"
              f"{figures['rps']:>8.0f}{figures['errors']:>7}{figures['server_cpu_ms']:>10.2f}"
              f"{verdict(figures['goal_met']):>6}")
    lists = ", ".join(f"{m} {s}" for m, s in row["live_lists"].items())
    print(f"pages at {args.connections} connections, {args.page_seconds:g} s each, median of "
          f"{args.page_runs}; the visitor's live lists: {lists}")
    print("a visitor's fold-in (5 clicks, alone, 1 thread), ms: "
          + ", ".join(f"{m} {ms:.2f}" for m, ms in row["fold_in_ms"].items()))
    clicks = row["clicks"]
    print(f"clicks at {args.click_rate:g}/s for {args.click_seconds:g} s: {clicks['accepted']} of "
          f"{clicks['sent']} accepted ({clicks['clicks_per_s']}/s), 202 -> fresh p50 "
          f"{clicks['fresh_p50_s']} s, p95 {clicks['fresh_p95_s']} s; POST p95 {clicks['post_p95_ms']} ms; "
          f"not fresh in every model {clicks['missing_models']}")
    print("CPU ms per accepted click (the external MariaDB not counted): "
          + ", ".join(f"{role} {ms:.1f}" for role, ms in row["cpu_ms_per_click"].items()))
    print(f"web RSS: {row['web_rss_mb']:.0f} MB in the largest of {row['web_processes']} processes "
          "(granian's main process and its workers)")
    worst = max(p["p95_ms"] for p in row["pages"].values())
    print(f"calibration: a fixed pure-Python loop took {row['calibration_ms']:.1f} ms of CPU. On a host "
          f"{SLOWER:g}x slower: import {SLOWER * row['import']['wall_s'] / 60:.1f} min, worst page p95 "
          f"{SLOWER * worst:.0f} ms, fold-in "
          + ", ".join(f"{m} {SLOWER * ms:.2f} ms" for m, ms in row["fold_in_ms"].items())
          + f", {SLOWER * row['cpu_ms_per_click']['all']:.1f} ms of CPU a click")
    print("goals (set at 25M ratings): " + ", ".join(f"{k} {verdict(v)}" for k, v in row["goals"].items()))


def summary_print(rows: list[dict]) -> None:
    models = "/".join(FOLD_IN_MODELS)
    print(f"\n{'size':<7}{'ratings':>12}{'import s':>10}{'import MB':>11}{'web RSS MB':>12}"
          f"{'worst p95 ms':>14}{'least req/s':>13}  {'fold-in ms ' + models:<34}{'fresh p95 s':>12}"
          f"{'CPU ms/click':>14}")
    for row in rows:
        pages = row["pages"].values()
        fold = "/".join(f"{row['fold_in_ms'][m]:.2f}" for m in FOLD_IN_MODELS)
        print(f"{row['size']:<7}{row['ratings']:>12,}{row['import']['wall_s']:>10.1f}"
              f"{row['import']['peak_mb']:>11.0f}{row['web_rss_mb']:>12.0f}"
              f"{max(p['p95_ms'] for p in pages):>14.1f}{min(p['rps'] for p in pages):>13.0f}  {fold:<34}"
              f"{row['clicks']['fresh_p95_s']:>12}{row['cpu_ms_per_click']['all']:>14.1f}")


def plot(rows: list[dict], path: Path) -> None:
    """Each cost against the ratings, log-log: one panel per kind of cost, a line per page,
    model or role, and a dotted one at the goal where it has one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["ratings"])
    panels = {
        "import (s)": {"import": lambda r: r["import"]["wall_s"]},
        "memory (MB)": {"import peak": lambda r: r["import"]["peak_mb"],
                        "web process RSS": lambda r: r["web_rss_mb"]},
        "page p95 (ms)": {p: (lambda r, p=p: r["pages"][p]["p95_ms"]) for p in rows[0]["pages"]},
        "a visitor's fold-in (ms)": {m: (lambda r, m=m: r["fold_in_ms"][m]) for m in FOLD_IN_MODELS},
        "202 -> fresh p95 (s)": {"fresh p95": lambda r: r["clicks"]["fresh_p95_s"]},
        "CPU ms per accepted click": {
            role: (lambda r, role=role: r["cpu_ms_per_click"].get(role, float("nan")))
            for role in rows[-1]["cpu_ms_per_click"]},
    }
    goal_lines = {"import (s)": (IMPORT_S, "goal"), "memory (MB)": (WEB_RSS_MB, "goal, web RSS"),
                  "page p95 (ms)": (PAGE_P95_MS, "goal"), "202 -> fresh p95 (s)": (FRESH_P95_S, "goal")}
    figure, axes = plt.subplots(2, 3, figsize=(16, 9))
    ratings = [r["ratings"] for r in rows]
    for axis, (title, lines) in zip(axes.flat, panels.items(), strict=True):
        for label, value in lines.items():
            axis.plot(ratings, [value(r) for r in rows], marker="o", label=label)
        if title in goal_lines:
            goal, label = goal_lines[title]
            axis.axhline(goal, color="grey", linestyle=":", label=label)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(title)
        axis.set_xlabel("ratings")
        axis.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=["small", "1m", "5m"],
                        help="releases to measure (25m: the goals' run, a long one)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/cinegraph-scale"),
                        help="generated releases and each size's MODEL_DIR, reused when present")
    parser.add_argument("--server", default="mysql://root@127.0.0.1:3306",
                        help="MySQL server for the scratch databases cg_scale_<size> (each dropped!)")
    parser.add_argument("--seed", type=int, default=0, help="of the generated releases")
    parser.add_argument("--port", type=int, default=8020, help="of the demo's web server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--page-seconds", type=float, default=5.0, help="of load per page and run")
    parser.add_argument("--page-runs", type=int, default=3, help="passes over every page; medians shown")
    parser.add_argument("--fold-in-runs", type=int, default=8, help="timed fold-ins per model; the median")
    parser.add_argument("--click-rate", type=float, default=100.0, help="clicks per second")
    parser.add_argument("--click-seconds", type=float, default=60.0, help="of clicking")
    parser.add_argument("--out", type=Path, default=Path("var/scale/scale.png"), help="the log-log PNG")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    order = sorted(dict.fromkeys(args.sizes), key=list(SIZES).index)

    rows, small = [], None
    with tqdm(total=len(order) * STEPS, desc="scale") as progress:
        for name in order:  # small first: the fold-in's goal is judged against it
            row = size_run(name, args, progress)
            small = row if name == "small" else small
            row["goals"] = goals(row, small)
            size_print(row, args)  # as each size ends: a long run that fails later keeps these
            rows.append(row)
    summary_print(rows)
    plot(rows, args.out)
    print(f"\neach cost against the ratings, log-log: {args.out}; the children's tables in "
          f"{args.out.parent}/<size>/")
    largest = rows[-1]
    print(json.dumps({"sizes": rows, "goals_at": largest["size"], "goals": largest["goals"],
                      "all_goals_met": all(v for v in largest["goals"].values() if v is not None),
                      "png": str(args.out)}))


if __name__ == "__main__":
    main()
