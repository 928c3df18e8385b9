"""Reasons and controls a visitor can trust: how specific and faithful "because you watched …"
is, per rule, and what "Not interested" does to the movies like the dismissed one.

    python -m benchmarks.explain_quality [--seed 0] [--models lightgcn ngcf pinsage graphfilter]
                                         [--fold-seeds 4] [--published]

Each model trains on ml-latest-small without 10% of its users (`fold_in_quality`'s split and
cache: a second run only re-measures). Each held-out user with at least 5 movies is folded in
through the live path with 80% of its history (one round of the live workers' fold-in; the
graph filter's list comes from its closed form), and gets a page of the top 20 movies it has
not seen. Each page is explained by every rule of `pytorch_models.serving.explain` (the two
positive terms the rule picks; `largest` was the site's rule before issue 25, `distinctive` is
it now, `counterfactual` names the movie whose removal drops the item furthest in the scores the
terms split: with --published, the most any rule naming positive terms can reach), and measured
as the issue asks:

- specificity: distinct reason sets on a page, as a share of the page, averaged over visitors;
- faithfulness (the deletion test): the visitor is folded in again without the first named
  movie, and again without a random other movie of its history; the share of explained
  movies whose rank falls more in the first case than in the second (ties count against).
  Ranks are among the movies of neither history, so a removed movie is not a competitor. Also
  printed: the share of ties (the two removals leave the movie at the same rank), and the
  faithfulness among the rest.

"Not interested": each visitor then dismisses the first movie of its page and is folded in
again (the same history, the dismissal as the live path's explicit negative; the graph filter's
signed history). The ten movies closest to the dismissed one in the model's own item space
(cosine, outside the history) are ranked in both lists; their mean rank should grow (fall down
the list), per model.

Every fold-in starts from the same seed, so two folds of one visitor differ only by the
removed or dismissed movie. The live fine-tune draws random negatives, so removing any one of a
long history moves every score a little at random; the deletion test ranks by the mean score
over --fold-seeds such fold-ins (the graph filter has nothing random: one). --published scores
every list from the published tables instead (`score_history`: what a page scores on request,
and what the explanation splits exactly). Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import dgl
import numpy as np
import torch
from tqdm import tqdm

from benchmarks.fold_in_quality import split_users, trained_checkpoint, walk_graphs
from pytorch_models.data.interactions import load_movielens, load_movielens_features
from pytorch_models.serving.explain import RULES, removal_ranks
from pytorch_models.serving.fold_in import fold_in_for, fold_in_round, score_history

PAGE = 20
TOP = 2  # the site's "Because you watched A and B"
MIN_HISTORY = 5
GOALS = {"specificity": 0.5, "faithfulness": 0.8}


def live_scores(checkpoint, histories: list[list[int]], seed: int,
                dismissed: list[list[int]] | None = None, *, published: bool = False) -> torch.Tensor:
    """(V, I) scores of visitors folded in with their whole histories (and dismissed movies) in
    one live round; `published`: scored from the published tables instead (`score_history`)."""
    dismissed = [[] for _ in histories] if dismissed is None else dismissed
    if checkpoint.model_name == "graphfilter" or published:
        return torch.stack([score_history(checkpoint, history, against)
                            for history, against in zip(histories, dismissed, strict=True)])
    fold_in = fold_in_for(checkpoint)
    dgl.seed(seed)  # PinSage's walks
    base, graph = walk_graphs(checkpoint)
    rows = {str(v): history for v, history in enumerate(histories)}
    offsets = torch.zeros(len(histories), checkpoint.config["dim"])
    offsets, batch, visits = fold_in_round(fold_in, rows, offsets, graph=graph, base=base,
                                           generator=torch.Generator().manual_seed(seed), dismissed=dismissed)
    return fold_in.scores(offsets, batch, visits)


def ranks(scores: torch.Tensor, items: list[int], excluded: list[int]) -> list[int]:
    """Each item's rank (0 = first) among the movies not in `excluded`."""
    scores = scores.clone()
    scores[excluded] = float("-inf")
    return [int((scores > scores[item]).sum()) for item in items]


def _other(history: list[int], named: int, rng: np.random.Generator) -> int:
    others = [h for h in history if h != named]
    return others[rng.integers(len(others))]


def mean_live_scores(checkpoint, histories: list[list[int]], seed: int, fold_seeds: int, *,
                     published: bool = False) -> torch.Tensor:
    """`live_scores` averaged over `fold_seeds` fold-ins (seeds seed, seed + 1, ...)."""
    if checkpoint.model_name == "graphfilter" or published:
        return live_scores(checkpoint, histories, seed, published=published)
    return torch.stack([live_scores(checkpoint, histories, seed + n) for n in range(fold_seeds)]).mean(0)


def measure_visitor(checkpoint, history: list[int], seed: int, rng: np.random.Generator,
                    fold_seeds: int = 1, *, published: bool = False) -> dict:
    """One visitor's page, reasons by each rule, and its deletion test per rule."""
    scores = live_scores(checkpoint, [history], seed, published=published)[0]
    scores[history] = float("-inf")
    page = torch.topk(scores, PAGE).indices.tolist()
    terms, removal = removal_ranks(checkpoint, history, page)
    named = {}
    for rule, choose in RULES.items():
        values, columns = choose(terms, removal, TOP)
        named[rule] = [[history[c] for c, v in zip(row, vals, strict=True) if v > 0]
                       for row, vals in zip(columns.tolist(), values.tolist(), strict=True)]
    # The deletion test: the first named movie, and a random other one, removed in turn; one
    # fold-in per removed movie, all in one batch.
    pairs = {rule: [(names[0], _other(history, names[0], rng)) if names else None for names in reasons]
             for rule, reasons in named.items()}
    removed = sorted({movie for rule in pairs.values() for pair in rule if pair for movie in pair})
    variants = [[h for h in history if h != r] for r in removed]
    without = mean_live_scores(checkpoint, variants, seed, fold_seeds, published=published)
    rank_without = {r: ranks(without[n], page, history) for n, r in enumerate(removed)}
    result = {}
    for rule, reasons in named.items():
        sets = {tuple(sorted(r)) for r in reasons if r}
        tested = [(position, pair) for position, pair in enumerate(pairs[rule]) if pair]
        wins = sum(rank_without[first][position] > rank_without[other][position]
                   for position, (first, other) in tested)
        ties = sum(rank_without[first][position] == rank_without[other][position]
                   for position, (first, other) in tested)
        result[rule] = {"specificity": len(sets) / PAGE, "wins": wins, "ties": ties, "tested": len(tested)}
    return result


NEIGHBOURS = 10


def measure_dismissal(checkpoint, history: list[int], seed: int, *,
                      published: bool = False) -> tuple[float, float]:
    """Mean rank (0 = first) of the dismissed top movie's NEIGHBOURS nearest movies among the
    unseen, before and after the dismissal."""
    before = live_scores(checkpoint, [history], seed, published=published)[0]
    before[history] = float("-inf")
    top = int(before.argmax())
    after = live_scores(checkpoint, [history], seed, dismissed=[[top]], published=published)[0]
    table = torch.nn.functional.normalize(checkpoint.item_embeddings.float(), dim=1)
    closeness = table @ table[top]
    closeness[[top, *history]] = float("-inf")
    neighbours = torch.topk(closeness, NEIGHBOURS).indices.tolist()
    excluded = [*history, top]
    return (float(np.mean(ranks(before, neighbours, excluded))),
            float(np.mean(ranks(after, neighbours, excluded))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data/ml-latest-small")
    parser.add_argument("--models", nargs="+", default=["lightgcn", "ngcf", "pinsage", "graphfilter"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default="var/benchmarks/fold_in_quality")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--fold-seeds", type=int, default=4,
                        help="fold-ins averaged per visitor in the deletion test")
    parser.add_argument("--published", action="store_true",
                        help="score from the published tables (what a page scores on request, and what the "
                             "explanation splits exactly) instead of the live fold-in")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    data = load_movielens(args.data_dir, test_fraction=0.0)
    features = load_movielens_features(args.data_dir, data.item_ids)
    trained, visitor_train, _, n_held = split_users(data, args.seed)
    histories = [[] for _ in range(n_held)]
    for user, item in visitor_train:
        histories[user].append(int(item))
    histories = [h for h in histories if len(h) >= MIN_HISTORY]

    summary = {}
    for name in args.models:
        checkpoint = trained_checkpoint(name, trained, features, Path(args.cache_dir), args.seed)
        rng = np.random.default_rng(args.seed)
        visitors = [measure_visitor(checkpoint, h, args.seed, rng, args.fold_seeds, published=args.published)
                    for h in tqdm(histories, desc=f"{name} visitors", leave=False)]
        moved = [measure_dismissal(checkpoint, h, args.seed, published=args.published)
                 for h in tqdm(histories, desc=f"{name} dismissals", leave=False)]
        dismissal = {"neighbour_rank_before": round(float(np.mean([b for b, _ in moved])), 1),
                     "neighbour_rank_after": round(float(np.mean([a for _, a in moved])), 1),
                     "visitors_dropped": round(float(np.mean([a > b for b, a in moved])), 4)}
        summary[name] = {
            "dismissal": dismissal,
            **{rule: {
                "specificity": round(float(np.mean([v[rule]["specificity"] for v in visitors])), 4),
                "faithfulness": round(sum(v[rule]["wins"] for v in visitors)
                                      / max(1, sum(v[rule]["tested"] for v in visitors)), 4),
                "explained": sum(v[rule]["tested"] for v in visitors),
                "unmoved": round(sum(v[rule]["ties"] for v in visitors)
                                 / max(1, sum(v[rule]["tested"] for v in visitors)), 4),
                "faithful_where_moved": round(sum(v[rule]["wins"] for v in visitors) / max(1, sum(
                    v[rule]["tested"] - v[rule]["ties"] for v in visitors)), 4),
            } for rule in RULES},
        }

    print(f"\nreasons on {args.data_dir}: {len(histories)} held-out visitors (seed {args.seed}, history "
          f"≥ {MIN_HISTORY}), pages of {PAGE}, {TOP} reasons per movie; deletion test over the mean of "
          f"{args.fold_seeds} fold-ins" + ("; scored from the published tables" if args.published else ""))
    print(f"{'model':<12} {'rule':<12} {'specificity':>11} {'faithfulness':>12} {'explained':>9} "
          f"{'same rank':>9} {'faithful where a rank moved':>27}")
    for name, rules in summary.items():
        for rule in RULES:
            figures = rules[rule]
            print(f"{name:<12} {rule:<12} {figures['specificity']:>11.3f} {figures['faithfulness']:>12.3f} "
                  f"{figures['explained']:>9} {figures['unmoved']:>9.3f} "
                  f"{figures['faithful_where_moved']:>27.3f}")
    print(f"goals (distinctive, the site's rule): specificity ≥ {GOALS['specificity']}, "
          f"faithfulness ≥ {GOALS['faithfulness']}")
    print(f"\n\"Not interested\" in the top movie: mean rank of its {NEIGHBOURS} nearest movies in the "
          "visitor's next list (0 = first)")
    print(f"{'model':<12} {'before':>8} {'after':>8} {'visitors where they fell':>25}")
    for name, rules in summary.items():
        d = rules["dismissal"]
        print(f"{name:<12} {d['neighbour_rank_before']:>8.1f} {d['neighbour_rank_after']:>8.1f} "
              f"{d['visitors_dropped']:>25.3f}")
    summary["goals_met"] = all(summary[name]["distinctive"][g] >= bar for name in args.models
                               for g, bar in GOALS.items())
    summary["dismissal_drops"] = all(figures["dismissal"]["neighbour_rank_after"]
                                     > figures["dismissal"]["neighbour_rank_before"]
                                     for figures in (summary[name] for name in args.models))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
