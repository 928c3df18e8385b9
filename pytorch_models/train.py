"""The command line of a full training run (`training.train_model`): train LightGCN, NGCF,
PinSage, the graph filter or the popular baseline and save a checkpoint.

    python -m pytorch_models.train --dataset movielens --data-dir data/ml-latest-small \
        --model lightgcn --out var/models/lightgcn/dev

Data-parallel on N processes or machines, the same command under torchrun (gloo on the CPU,
nccl with --device cuda; `training.distributed`):

    torchrun --nproc-per-node 2 -m pytorch_models.train --dataset gowalla --data-dir ... --model lightgcn
    torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint HOST:PORT \
        --rdzv-id RUN -m pytorch_models.train ...          # on each machine

--batch-size is the global batch, shared between the ranks; rank 0 evaluates, writes --out and
prints the JSON line.

The last stdout line is one JSON object (seconds_per_epoch, recall@20, ndcg@20, ...). What to
train with is a `TrainOptions` (pytorch_models/training/options.py); the epoch loops are in
pytorch_models/training/loops.py. `--out` writes the folder with `training.train_model.publish`,
the writer the site's versions use too (`predictors.versions.version_make`, which adds the
registry's versioning, the gate and the site's data): a research run, no Django, no registry.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import fields

from pytorch_models.data.interactions import load_dataset, load_movielens_features
from pytorch_models.data.sequences import load_movielens_by_time
from pytorch_models.models.architectures import CONFIGS
from pytorch_models.models.graphfilter.model import parse_override
from pytorch_models.models.names import (
    EMBEDDING_MODELS,
    GRADIENT_TRAINED_MODELS,
    SEQUENCE_MODELS,
    SERVED_MODELS,
)
from pytorch_models.training import distributed
from pytorch_models.training.options import (
    AUTO_SAMPLED_ABOVE,
    DEFAULT_FANOUT,
    MAX_HARD_NEGATIVES,
    PROPAGATIONS,
    TrainOptions,
    parse_fanout,
)
from pytorch_models.training.train_model import publish, train_model


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a Cinegraph recommender and save a checkpoint.")
    parser.add_argument("--dataset", choices=("gowalla", "movielens"), required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", choices=SERVED_MODELS, required=True)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, help="default per model: 2048 pairs; SASRec 128 sequences")
    parser.add_argument("--dim", type=int, help="embedding size; default per model (DEFAULTS), else 64")
    parser.add_argument("--layers", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"),
                        help="cosine: decay to 5%% of --lr over --time-budget (else over --epochs); "
                             "default per model (DEFAULTS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="movielens hold-out per user")
    parser.add_argument("--split", choices=("random", "time"), default="random",
                        help="movielens: hold out random ratings of each user, or each user's latest "
                             "(by timestamp; what sasrec needs)")
    parser.add_argument("--eval-every", type=int,
                        help="evaluate on the held-out split every N epochs: the recall curve in meta.json's "
                             "history. Off by default: on Gowalla one evaluation takes ~11 s against a "
                             "LightGCN epoch of ~25 s (docs/benchmarks.md)")
    parser.add_argument("--eval-users", type=int,
                        help="rank at most this many held-out users in each evaluation, a seeded sample "
                             "(default: every one, as the papers' figures are)")
    parser.add_argument("--time-budget", type=float,
                        help="stop at the first batch boundary after this many seconds, counted from the "
                             "start of training (graph, initialisation and evaluations count); LightGCN, "
                             "NGCF and PinSage")
    parser.add_argument("--workers", type=int, default=1,
                        help="sampling processes (PinSage; LightGCN/NGCF under sampled propagation); "
                             "0 samples in the training process")
    parser.add_argument("--hard-negatives", type=int, default=MAX_HARD_NEGATIVES,
                        help="PinSage curriculum cap")
    parser.add_argument("--neighbourhoods", choices=("sampled", "cached"),
                        help="PinSage blocks: random walks per batch, or a neighbour table refreshed "
                             "per epoch (default: cached)")
    parser.add_argument("--shared-negatives", type=int, default=0, help="PinSage negatives shared by a batch")
    parser.add_argument("--negative-power", type=float,
                        help="PinSage random negatives ∝ (degree + 1) ** this; 0 uniform (default 0.5)")
    parser.add_argument("--negative-candidates", type=int, default=1,
                        help="LightGCN/NGCF: train on the highest-scoring of this many uniform negatives "
                             "(dynamic negative sampling); 1: plain BPR")
    parser.add_argument("--propagation", choices=PROPAGATIONS, default="auto",
                        help="LightGCN/NGCF: propagate the whole graph every step (full), or only each "
                             "batch's sampled neighbourhood, evaluating by layer-wise inference (sampled); "
                             f"auto: sampled above {AUTO_SAMPLED_ABOVE:,} training edges "
                             "(options.py says why)")
    parser.add_argument("--fanout",
                        help="LightGCN/NGCF sampled propagation: neighbours per node per layer, input layer "
                             "first: '10,10,10', one count for every layer, or 'all' "
                             f"(default {DEFAULT_FANOUT} per layer)")
    parser.add_argument("--init", choices=("random", "spectral"),
                        help="LightGCN/NGCF ego embeddings, PinSage's id table: random numbers, or R̃'s top "
                             "singular vectors (spectral_init; the default)")
    parser.add_argument("--l2", type=float, help="LightGCN/NGCF: L2 weight on the batch's ego embeddings")
    parser.add_argument("--node-dropout", type=float, help="NGCF: edge dropout rate of the Laplacian")
    parser.add_argument("--message-dropout", type=float, help="NGCF: dropout on each layer's output")
    parser.add_argument("--filter", type=parse_override, action="append", default=[], metavar="KEY=VALUE",
                        help="graphfilter config field (factor_dim, idl_beta, T_b, K_b, T_s, K_s, solver, "
                             "cheby_weight, ...); repeatable")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where the model and its steps run (DGL samples on the CPU); under torchrun, "
                             "each rank its LOCAL_RANK-th GPU")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", help="checkpoint folder to write")
    return parser


def _options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrainOptions:
    overrides = {key: value for key in ("l2", "node_dropout", "message_dropout")
                 if (value := getattr(args, key)) is not None}
    overrides.update(dict(args.filter))
    # An override applies where the model's config has that field (NGCF: all three; LightGCN: l2).
    known = {f.name for f in fields(CONFIGS[args.model])} if args.model in CONFIGS else set()
    unknown = sorted(set(overrides) - known)
    if unknown:
        parser.error(f"--{'/--'.join(unknown).replace('_', '-')} does not apply to {args.model}")
    if args.negative_candidates < 1 or (args.negative_candidates > 1 and args.model not in EMBEDDING_MODELS):
        parser.error("--negative-candidates takes a count ≥ 1, "
                     "and more than 1 applies to lightgcn and ngcf only")
    if (args.propagation != "auto" or args.fanout) and args.model not in EMBEDDING_MODELS:
        parser.error(f"--propagation and --fanout apply to lightgcn and ngcf, not {args.model}")
    if args.time_budget is not None and args.time_budget < 0:
        parser.error("--time-budget takes seconds ≥ 0")
    if args.split == "time" and args.dataset != "movielens":
        parser.error("--split time applies to movielens (gowalla's split is given)")
    if args.model in SEQUENCE_MODELS and args.split != "time":
        parser.error(f"{args.model} learns from each user's order: --dataset movielens --split time")
    if args.eval_users is not None and args.eval_users < 1:
        parser.error("--eval-users takes a count ≥ 1")
    if args.init == "spectral" and (args.model not in GRADIENT_TRAINED_MODELS
                                    or args.model in SEQUENCE_MODELS):
        parser.error(f"--init {args.init} applies to lightgcn, ngcf and pinsage, not {args.model}")
    options = TrainOptions(
        epochs=args.epochs, batch_size=args.batch_size, dim=args.dim, layers=args.layers, lr=args.lr,
        lr_schedule=args.lr_schedule, seed=args.seed, progress=not args.no_progress,
        time_budget_s=args.time_budget, eval_every=args.eval_every, eval_users=args.eval_users,
        init=args.init,
        config_overrides=overrides, num_workers=args.workers,
        hard_negatives=args.hard_negatives, neighbourhoods=args.neighbourhoods,
        shared_negatives=args.shared_negatives, negative_power=args.negative_power,
        negative_candidates=args.negative_candidates, propagation=args.propagation, fanout=args.fanout,
        device=args.device,
    )
    try:
        distributed.device_for(args.device)
    except ValueError as error:
        parser.error(str(error))
    if args.fanout:
        try:
            parse_fanout(args.fanout, options.for_model(args.model).layers)
        except ValueError as error:
            parser.error(f"--fanout: {error}")
    return options


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    options = _options(args, parser)
    ranks = distributed.start(args.device)
    if ranks.many and args.model not in GRADIENT_TRAINED_MODELS:
        distributed.stop()
        parser.error(f"{args.model} is fitted in closed form: run it as one process, not under torchrun")
    logging.basicConfig(level=logging.INFO if ranks.primary else logging.WARNING,
                        format=f"%(asctime)s rank {ranks.rank} %(name)s %(message)s")
    if args.split == "time":
        data = load_movielens_by_time(args.data_dir, test_fraction=args.test_fraction)
        features = load_movielens_features(args.data_dir, data.item_ids)
    else:
        data, features = load_dataset(args.dataset, args.data_dir, test_fraction=args.test_fraction,
                                      seed=args.seed)
    try:
        result = train_model(args.model, data, features, options)
    finally:
        distributed.stop()
    if not ranks.primary:
        return
    if args.out:
        publish(result, data, args.out, item_features=features,
                dataset={"dataset": args.dataset, "data_dir": str(args.data_dir)})
    summary = {
        "model": args.model,
        "seconds_per_epoch": result.seconds_per_epoch,
        "train_seconds": round(result.train_seconds, 2),
        "epochs_run": len(result.epoch_seconds),
        "budget_hit": result.budget["hit"],
        **result.metrics,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
