"""Blends of recommenders: per-user z-scores over unseen items, weighted, and the evaluate
command that ranks with them."""

import json

import numpy as np
import pytest
import torch

from pytorch_models.evaluate import main as evaluate_main
from pytorch_models.evaluation.blend import blended_scorer, standardised
from pytorch_models.train import main as train_main


def test_z_scores_leave_the_seen_items_out_of_the_mean_and_spread():
    scores = torch.tensor([[1.0, 2.0, 3.0, 10.0]])
    seen = torch.tensor([[False, False, False, True]])
    # Unseen 1, 2, 3: mean 2, spread sqrt(2/3); the seen 10 is scaled the same way.
    spread = (2 / 3) ** 0.5
    assert torch.allclose(standardised(scores, seen),
                          torch.tensor([[-1 / spread, 0.0, 1 / spread, 8 / spread]]))


def test_a_blend_is_the_weighted_sum_of_each_models_z_scores():
    # User 0 has seen item 0; user 1 nothing. Model a ranks items 1 > 2 > 3, model b the reverse
    # on a scale a thousand times larger: only the weights decide which one wins.
    a = torch.tensor([[5.0, 3.0, 2.0, 1.0], [0.0, 3.0, 2.0, 1.0]])
    b = 1000 * torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]])
    train = np.array([[0, 0]])
    users = torch.tensor([0, 1])

    def blend(wa, wb):
        return blended_scorer([lambda u: a[u], lambda u: b[u]], [wa, wb], train, n_users=2, n_items=4)(users)

    seen = torch.tensor([[True, False, False, False], [False] * 4])
    assert torch.allclose(blend(0.3, 0.7), 0.3 * standardised(a, seen) + 0.7 * standardised(b, seen))
    assert blend(0.6, 0.4)[0, 1:].argsort(descending=True).tolist() == [0, 1, 2]  # a's order: items 1, 2, 3
    assert blend(0.4, 0.6)[0, 1:].argsort(descending=True).tolist() == [2, 1, 0]  # b's order
    with pytest.raises(ValueError, match="one weight per model"):
        blended_scorer([lambda u: a[u]], [0.5, 0.5], train, 2, 4)


def test_evaluate_ranks_with_the_blend_of_two_checkpoints(tmp_path, capsys):
    """Popular and a short LightGCN on a hand-made Gowalla split: weight 1 on one of them gives
    exactly its own figures."""
    data = tmp_path / "gowalla"
    data.mkdir()
    rng = np.random.default_rng(0)
    (data / "train.txt").write_text("".join(f"{u} {' '.join(map(str, rng.choice(30, 6, replace=False)))}\n"
                                            for u in range(20)))
    (data / "test.txt").write_text("".join(f"{u} {u % 30} {(u + 7) % 30}\n" for u in range(20)))
    common = ["--dataset", "gowalla", "--data-dir", str(data), "--no-progress"]
    train_main([*common, "--model", "popular", "--out", str(tmp_path / "popular")])
    train_main([*common, "--model", "lightgcn", "--epochs", "3", "--dim", "8", "--batch-size", "32",
                "--lr", "0.05", "--out", str(tmp_path / "lightgcn")])
    capsys.readouterr()

    def evaluate(*args):
        evaluate_main(["--dataset", "gowalla", "--data-dir", str(data), "--k", "5", *args])
        return json.loads(capsys.readouterr().out.splitlines()[-1])

    alone = {name: evaluate("--checkpoint", str(tmp_path / name)) for name in ("popular", "lightgcn")}
    both = ["--checkpoint", str(tmp_path / "popular"), "--checkpoint", str(tmp_path / "lightgcn")]
    figures = {name: (alone[name]["recall@5"], alone[name]["ndcg@5"]) for name in alone}
    assert figures["popular"] != figures["lightgcn"]  # else the check below could not tell them apart
    for weights, name in (("1 0", "popular"), ("0 1", "lightgcn")):
        blend = evaluate(*both, "--weights", *weights.split())
        assert blend["weights"] == [float(w) for w in weights.split()]
        assert blend["recall@5"] == pytest.approx(alone[name]["recall@5"])
        assert blend["ndcg@5"] == pytest.approx(alone[name]["ndcg@5"])
    with pytest.raises(SystemExit):
        evaluate(*both, "--weights", "1")
