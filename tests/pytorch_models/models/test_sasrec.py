"""SASRec: causal attention, padding that changes nothing, the time-ordered split, and that
training learns what comes next."""

import numpy as np
import pytest
import torch

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data.interactions import Interactions
from pytorch_models.data.sequences import split_by_time, user_sequences
from pytorch_models.evaluation.metrics import ranking_metrics
from pytorch_models.models.architectures import build_model
from pytorch_models.models.sasrec import SASRec, SASRecConfig, padded_rows
from pytorch_models.serving.fold_in import score_history
from pytorch_models.serving.scoring import checkpoint_scorer
from pytorch_models.train import _options, _parser
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model
from pytorch_models.training.warm_start import warm_start


@pytest.fixture
def model():
    torch.manual_seed(0)
    return SASRec(SASRecConfig(n_items=30, dim=16, blocks=2, heads=2, max_len=12)).eval()


def test_a_later_item_cannot_change_an_earlier_positions_output(model):
    rows = padded_rows([[3, 1, 4, 1, 5, 9, 2, 6]], 12)
    changed = rows.clone()
    changed[0, -3:] = torch.tensor([20, 21, 22])  # the last three items replaced
    with torch.no_grad():
        before, after = model(rows), model(changed)
    assert torch.allclose(before[0, :-3], after[0, :-3], atol=1e-6)  # every earlier position
    assert not torch.allclose(before[0, -3:], after[0, -3:])  # the changed ones did change


def test_padding_leaves_a_sequences_scores_alone(model):
    short, long = [7, 8, 9], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    with torch.no_grad():
        alone = model.last_scores(padded_rows([short], 12))
        beside = model.last_scores(padded_rows([short, long], 12))  # padded to the longer one
    assert padded_rows([short, long], 12).shape == (2, 10)
    assert torch.allclose(alone[0], beside[0], atol=1e-5)


def test_padded_rows_keep_the_newest_items_shifted_past_padding():
    rows = padded_rows([[0, 1, 2, 3, 4], [5]], 3)
    assert rows.tolist() == [[3, 4, 5], [0, 0, 6]]  # item i is row i + 1; 0 pads on the left


def test_the_time_split_holds_out_each_users_latest_and_keeps_one():
    rows = np.array([[0, 5], [0, 6], [0, 7], [0, 8], [0, 9], [1, 1], [1, 2]])
    stamps = np.array([50, 10, 40, 20, 30, 7, 7])  # user 1 rated both in the same second
    train, train_stamps, test = split_by_time(rows, stamps, 3, 0.4)
    assert train.tolist() == [[0, 6], [0, 8], [0, 9], [1, 1]]  # time order; ties by item
    assert train_stamps.tolist() == [10, 20, 30, 7]
    assert sorted(test.tolist()) == [[0, 5], [0, 7], [1, 2]]  # the latest 40%, rounded
    assert [s.tolist() for s in user_sequences(train, train_stamps, 3)] == [[6, 8, 9], [1], []]
    alone = split_by_time(np.array([[2, 3]]), np.array([1]), 3, 0.5)
    assert alone[0].tolist() == [[2, 3]] and len(alone[2]) == 0  # a single interaction stays in train


def cycles(n_users=80, n_items=40, length=10, seed=0):
    """Each user walks the cycle 0 -> 1 -> ... -> n_items-1 -> 0 from a random start; the last
    20% of each walk is held out, so the next item after the training part is always known."""
    rng = np.random.default_rng(seed)
    rows, stamps = [], []
    for user in range(n_users):
        start = rng.integers(n_items)
        for step in range(length):
            rows.append([user, (start + step) % n_items])
            stamps.append(1000 * user + step)
    rows, stamps = np.array(rows), np.array(stamps)
    train, train_stamps, test = split_by_time(rows, stamps, n_users, 0.2)
    return Interactions(n_users=n_users, n_items=n_items, train=train, test=test,
                        item_ids=np.arange(n_items), user_ids=np.arange(n_users), train_stamps=train_stamps)


def test_training_learns_what_comes_next():
    data = cycles()
    options = TrainOptions(epochs=40, batch_size=16, dim=16, lr=5e-3, progress=False, k=1,
                           config_overrides={"max_len": 8, "dropout": 0.0})
    untrained = train_model("sasrec", data, None, TrainOptions(**{**options.__dict__, "epochs": 0}))
    trained = train_model("sasrec", data, None, options)
    # The held-out items are the next two of the cycle: the first is the top-1 answer.
    assert trained.metrics["hit@1"] > 0.9 > 0.3 > untrained.metrics["hit@1"]  # 2 of 32 unseen by chance
    assert trained.history[-1]["loss"] < trained.history[0]["loss"]


def test_without_timestamps_it_refuses():
    data = cycles()
    data.train_stamps = None
    with pytest.raises(ValueError, match="timestamps"):
        train_model("sasrec", data, None, TrainOptions(epochs=1, progress=False))


def test_it_publishes_and_serves_from_the_checkpoint_as_trained(tmp_path):
    data = cycles()
    result = train_model("sasrec", data, None, TrainOptions(epochs=3, batch_size=16, dim=16, progress=False))
    folder = publish(result, data, tmp_path / "sasrec", dataset={"dataset": "cycles"})
    checkpoint = load_checkpoint(folder)
    assert np.array_equal(checkpoint.graph().train_stamps, data.train_stamps)  # the order travels
    assert torch.equal(checkpoint.item_embeddings, result.model.item_table().detach())
    # The held-out figures again, from the checkpoint alone.
    scorer = checkpoint_scorer(checkpoint, data.train, data.n_users)
    again = ranking_metrics(scorer, data.train, data.test, data.n_users, data.n_items)
    assert again["recall@20"] == pytest.approx(result.metrics["recall@20"], abs=1e-6)
    # A visitor's list: what follows its history, in the order given.
    history = [5, 6, 7]
    expected = result.model.eval().last_scores(padded_rows([history], 200))[0]
    assert torch.allclose(score_history(checkpoint, history), expected, atol=1e-5)
    assert not torch.allclose(score_history(checkpoint, history[::-1]), expected, atol=1e-3)


def test_the_command_line_trains_it_on_movielens_split_by_time_only():
    parser = _parser()
    base = ["--data-dir", "x", "--model", "sasrec"]
    good = parser.parse_args([*base, "--dataset", "movielens", "--split", "time"])
    assert _options(good, parser).for_model("sasrec").batch_size == 128  # sequences, the paper's
    for bad in (["--dataset", "movielens"], ["--dataset", "gowalla", "--split", "time"]):
        with pytest.raises(SystemExit):
            _options(parser.parse_args([*base, *bad]), parser)


def test_a_warm_start_carries_each_items_row_past_the_padding_row(tmp_path):
    """A retrain whose catalogue gained a movie in front (every item one row later): each item's
    row follows its id, the padding row stays the padding row, and the rest (positions,
    attention) is copied whole."""
    data = cycles()
    result = train_model("sasrec", data, None, TrainOptions(epochs=1, batch_size=16, dim=16, progress=False))
    checkpoint = load_checkpoint(publish(result, data, tmp_path / "old", dataset={"dataset": "cycles"}))
    grown = np.concatenate([[1000], data.item_ids])
    new = build_model("sasrec", {**checkpoint.config, "n_items": len(grown)})
    keys = [str(u) for u in data.user_ids]

    carried = warm_start(new, checkpoint, item_ids=grown, user_keys=keys, checkpoint_user_keys=keys)

    old = checkpoint.state_dict()
    assert carried["items"] == data.n_items
    assert torch.equal(new.items.weight[2:], old["items.weight"][1:])  # item i: row i + 2 now, i + 1 then
    assert torch.equal(new.items.weight[0], old["items.weight"][0])
    assert torch.equal(new.positions.weight, old["positions.weight"])
