"""How a model is trained: `TrainOptions`, and the per-model defaults its None fields take.

The defaults were chosen on ml-latest-small (80/20 per-user split, seed 0, 2 cores); see the
measurements in docs/benchmarks.md. `epochs=1` gives a tiny run for integration tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pytorch_models.models.names import EMBEDDING_MODELS

DEFAULTS = {
    # LightGCN and NGCF start from R̃'s singular vectors (`spectral_init`): recall@20 after
    # their default epochs .2123 -> .2315 (LightGCN) and .1913 -> .2029 (NGCF) over random
    # numbers; on Gowalla the same quality 10 minutes sooner (docs/benchmarks.md).
    "lightgcn": {"epochs": 60, "lr": 5e-3, "layers": 3, "init": "spectral"},
    # NGCF, recall@20 after 40 epochs: lr 1e-3 .1779, 2e-3 .1923 (.1853 already at 25).
    "ngcf": {"epochs": 40, "lr": 2e-3, "layers": 3, "init": "spectral"},
    # PinSage on ml-latest-small, recall@20 (80/20 split, seed 0, with tags): 6 epochs of
    # uniform negatives and fresh walks per batch .1357; cached neighbour tables .142 (12
    # epochs); negatives drawn ∝ (degree + 1) ** 0.5 .165 (power 0 .142, .35 .172 with the
    # cosine decay, .75 .151, 1.0 .090); a cosine decay of lr .179 (12 epochs), .184 (20);
    # dim 128 .190 (16 epochs), .188 (20). 256 shared negatives, lr 1e-2 and batches of 1024
    # did not help (.130, .134, .181). Runs differ by about ±.003 with the sampled tables.
    # PinSage's id table from R̃'s singular vectors (`spectral_init`) gave .2124-.2144 over
    # four runs, against .1841-.1937 over six from random numbers.
    "pinsage": {"epochs": 16, "lr": 3e-3, "layers": 2, "dim": 128, "lr_schedule": "cosine",
                "neighbourhoods": "cached", "negative_power": 0.5, "init": "spectral"},
    "popular": {"epochs": 0, "lr": 0.0},
    "graphfilter": {"epochs": 0, "lr": 0.0},  # training-free; its config comes through `config_overrides`
    # SASRec: the paper's MovieLens-1M settings (d 50, 2 blocks, Adam 1e-3, batches of 128
    # sequences); its batch counts sequences, not pairs.
    "sasrec": {"epochs": 200, "lr": 1e-3, "layers": 2, "dim": 50, "batch_size": 128},
}
# What a model's DEFAULTS entry does not set.
GENERAL_DEFAULTS = {"dim": 64, "batch_size": 2048, "lr_schedule": "constant", "neighbourhoods": "sampled",
                    "negative_power": 0.0, "layers": None, "init": "random"}
# Hard-negative curriculum: epoch e adds min(e, hard_negatives) per query. Off by default:
# on ml-latest-small (9.7k movies) every band tried (ranks 32-128, 100-400) lowered
# recall@20 (0.140 without -> 0.076 / 0.119 with, 6-8 epochs); enable it for large catalogues.
MAX_HARD_NEGATIVES = 0
# LightGCN/NGCF propagation. "full" multiplies the whole normalised adjacency at every step:
# exact, one CSR product per layer, but 2E messages per layer per step, so an epoch grows as
# E². "sampled" computes the batch's nodes over their sampled neighbourhood
# (`training.propagation`): with batches of 2048 pairs (≤ 6144 seeds) and fan-out 10 per
# layer, the blocks of a 3-layer step carry at most 61k + 676k + 10·min(743k, N) messages
# whatever E. "auto" takes sampled above AUTO_SAMPLED_ABOVE training edges. Chosen by counting
# messages per step, not by timing (no timing runs were allowed when it was written; issue 24's
# benchmarks.train_scale is where to check it):
#   ml-latest-small, 80k train pairs, N ≈ 10k: full 0.48M, sampled ≤ 0.27M plus DGL's sampling;
#   Gowalla, 810k, N ≈ 71k: full 4.9M, sampled ≤ 1.5M (a fan-out of 10 still reaches most of the
#     graph at 3 layers), and the published figures were measured with full propagation;
#   25M ratings, N ≈ 221k: full 150M, sampled ≤ 2.9M.
# Below ~1M edges the two are within a small factor and full is exact and measured; above it,
# full's step keeps growing with E and sampled's does not.
AUTO_SAMPLED_ABOVE = 1_000_000
PROPAGATIONS = ("auto", "full", "sampled")
# Neighbours sampled per node per layer when --fanout is not given: the DGL examples' order of
# magnitude, not tuned here (quality runs at sampled scale choose it).
DEFAULT_FANOUT = 10
# The fields whose None (and, for layers, 0) means "the model's default".
_PER_MODEL = ("epochs", "batch_size", "lr", "layers", "dim", "lr_schedule", "neighbourhoods",
              "negative_power", "init")


@dataclass(frozen=True)
class TrainOptions:
    """What `train_model` is told; a field left None takes the model's default (DEFAULTS,
    then GENERAL_DEFAULTS), which `for_model` fills in.

    epochs, lr, dim, layers (LightGCN/NGCF 3, PinSage 2, SASRec's blocks 2), batch_size (pairs;
    SASRec's, sequences), seed: as usual.
    lr_schedule: "constant" or "cosine" (decay to 5% over the epochs or the time budget,
    whichever ends first).
    time_budget_s: seconds a run may train, counted from the start of `train_model` (building
    the graph, the spectral and warm starts and the evaluations between epochs count): it
    stops at the first batch boundary after them, having taken at least one step, then
    evaluates. It applies to the models trained in batches (LightGCN, NGCF, PinSage); the graph
    filter and popular are fitted in closed form, in seconds, and never stopped. deadline: the
    `time.monotonic()` at which that budget ends; `train_model` sets it, not a caller (one clock
    for the batch loop, the epoch loop and the cosine decay). eval_every: the held-out recall@k
    every N epochs, the history's curve (None: only at the end). eval_users: held-out users
    ranked by those evaluations, a seeded sample past it (None: every one). eval_served: the
    graph filter is evaluated through the tables it publishes, as the site serves it, instead
    of through the exact filter (`training.graphfilter`).
    init: LightGCN/NGCF ego embeddings and PinSage's item id table from "random" numbers (the
    model's own init) or from the "spectral" tables of `pytorch_models.training.spectral_init` (R̃'s
    top singular vectors; every GNN's default).
    config_overrides: model config fields (LightGCN/NGCF: l2, node_dropout, message_dropout;
    graphfilter: any GraphFilterConfig field).
    num_workers: the sampling processes of PinSage and of LightGCN/NGCF's sampled propagation,
    which make the next batches while the model trains (0 samples in this process).
    PinSage only: hard_negatives, the curriculum's cap; neighbourhoods, blocks from random walks per batch
    ("sampled") or from a neighbour table refreshed every epoch ("cached"); shared_negatives,
    random items that are negatives of every query in a batch, besides each query's own;
    negative_power, random negatives drawn ∝ (degree + 1) ** negative_power (0: uniform).
    LightGCN/NGCF only: negative_candidates, M > 1 draws M uniform negatives per train pair and
    trains on the one the model scores highest (dynamic negative sampling); 1 is plain BPR.
    propagation, "full" (the whole graph every step), "sampled" (the batch's sampled blocks,
    layer-wise inference for evaluation and publishing) or "auto" (sampled above
    AUTO_SAMPLED_ABOVE training edges; `with_propagation` decides); fanout, the sampled
    neighbours per node per layer, input layer first: "10,10,10", one number for every layer,
    or "all" (None: DEFAULT_FANOUT per layer).
    device: "cpu" or "cuda", where the model and its steps run (DGL samples on the CPU); under
    torchrun every rank trains its share of each batch (`training.distributed`).
    """

    epochs: int | None = None
    batch_size: int | None = None
    dim: int | None = None
    layers: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None
    seed: int = 0
    progress: bool = True
    time_budget_s: float | None = None
    deadline: float | None = None
    eval_every: int | None = None
    eval_users: int | None = None
    eval_served: bool = False
    k: int = 20
    init: str | None = None
    config_overrides: dict = field(default_factory=dict)
    num_workers: int = 1
    hard_negatives: int = MAX_HARD_NEGATIVES
    neighbourhoods: str | None = None
    shared_negatives: int = 0
    negative_power: float | None = None
    negative_candidates: int = 1
    propagation: str = "auto"
    fanout: str | None = None
    device: str = "cpu"

    def for_model(self, model_name: str) -> TrainOptions:
        """These options with the model's defaults in place of the fields left unset."""
        defaults = {**GENERAL_DEFAULTS, **DEFAULTS[model_name]}
        unset = [name for name in _PER_MODEL
                 if getattr(self, name) is None or (name == "layers" and not self.layers)]
        return dataclasses.replace(self, **{name: defaults[name] for name in unset})

    def with_propagation(self, n_train_edges: int) -> TrainOptions:
        """These options (after `for_model`) with "auto" decided for `n_train_edges` and the
        fan-out written out per layer ("10,10,10" or "all"; None under full propagation)."""
        if self.propagation not in PROPAGATIONS:
            raise ValueError(f"propagation {self.propagation!r}: expected one of {PROPAGATIONS}")
        fanouts = parse_fanout(self.fanout or str(DEFAULT_FANOUT), self.layers)
        mode = self.propagation
        if mode == "auto":
            mode = "sampled" if n_train_edges > AUTO_SAMPLED_ABOVE and self.layers else "full"
        if mode == "sampled" and not self.layers:
            raise ValueError("sampled propagation needs at least one layer")
        fanout = None if mode == "full" else "all" if fanouts is None else ",".join(map(str, fanouts))
        return dataclasses.replace(self, propagation=mode, fanout=fanout)

    def fanouts(self) -> list[int] | None:
        """The per-layer fan-outs of sampled propagation, input layer first; None: all."""
        return parse_fanout(self.fanout or str(DEFAULT_FANOUT), self.layers)

    def hyper(self, model_name: str) -> dict:
        """What a checkpoint's meta.json records under `hyper`."""
        pinsage = {"neighbourhoods": self.neighbourhoods, "shared_negatives": self.shared_negatives,
                   "negative_power": self.negative_power}
        bpr = {"negative_candidates": self.negative_candidates, "propagation": self.propagation,
               "fanout": self.fanout}
        return {"epochs": self.epochs, "lr": self.lr, "lr_schedule": self.lr_schedule,
                "batch_size": self.batch_size, "seed": self.seed, "hard_negatives": self.hard_negatives,
                "init": self.init, "device": self.device,
                **(pinsage if model_name == "pinsage" else bpr if model_name in EMBEDDING_MODELS else {})}


def parse_fanout(text: str, layers: int) -> list[int] | None:
    """"10,5,5" -> [10, 5, 5] (one per layer, input layer first), "10" -> [10] * layers,
    "all" -> None (every neighbour). Raises ValueError on anything else."""
    if text.strip() == "all":
        return None
    try:
        fanouts = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"fan-out {text!r}: expected 'all', a count, or one count per layer") from None
    if len(fanouts) == 1:
        fanouts = fanouts * layers
    if len(fanouts) != layers or min(fanouts, default=1) < 1:
        raise ValueError(f"fan-out {text!r}: expected one count ≥ 1 for each of the {layers} layers")
    return fanouts
