"""The models' maths against values worked out by hand on a graph of five nodes.

The references here are written from the papers, not from the code under test: the
normalised adjacency and the NGCF layer (Wang et al., SIGIR 2019, eq. 3-7), BPR with its L2
term (the LightGCN code's convention, which NGCF's code shares), and PinSage's CONVOLVE and
max-margin loss (Ying et al., KDD 2018, Algorithm 1 and eq. 1). Each test names the mistakes it
catches; every one of them was tried once by editing the code and seen to fail the test.

The graph: user 0 watched items 0 and 1, user 1 watched items 1 and 2. Rows are
[u0, u1, i0, i1, i2]; degrees are 2, 2, 1, 2, 1.
"""

import math

import numpy as np
import pytest
import torch

from pytorch_models.data.graph import SymmetricAdjacency
from pytorch_models.models.lightgcn import LightGCN, LightGCNConfig
from pytorch_models.models.losses import bpr_loss, max_margin_loss
from pytorch_models.models.ngcf import NGCF, NGCFConfig, NGCFLayer
from pytorch_models.models.pinsage.model import Hop, PinSage, PinSageConfig

PAIRS = np.array([[0, 0], [0, 1], [1, 1], [1, 2]])
N_USERS, N_ITEMS = 2, 3
R = 1 / math.sqrt(2)
# L = D^-1/2 A D^-1/2 by hand: 1/sqrt(d_u d_i) per edge, 1/sqrt(2·1) or 1/sqrt(2·2).
LAPLACIAN = np.array([
    # u0   u1   i0   i1   i2
    [0.0, 0.0, R, 0.5, 0.0],  # u0
    [0.0, 0.0, 0.0, 0.5, R],  # u1
    [R, 0.0, 0.0, 0.0, 0.0],  # i0
    [0.5, 0.5, 0.0, 0.0, 0.0],  # i1
    [0.0, R, 0.0, 0.0, 0.0],  # i2
])
# Ego embeddings E^(0), dimension 2: users first, then items.
EGO = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0], [-1.0, 1.0]])
# NGCF weights in the paper's layout (E W: rows are inputs, columns outputs); neither is
# symmetric, so a transposed weight would show.
W1 = np.array([[1.0, -1.0], [0.0, 1.0]])
W2 = np.array([[1.0, 0.0], [1.0, 1.0]])


def laplacian_csr() -> torch.Tensor:
    return torch.tensor(LAPLACIAN, dtype=torch.float32).to_sparse_csr()


def leaky_relu(x: np.ndarray, slope: float = 0.2) -> np.ndarray:
    return np.where(x > 0, x, slope * x)


def ngcf_layer_reference(e: np.ndarray) -> np.ndarray:
    """NGCF eq. 7: E' = LeakyReLU((L + I) E W1 + (L E ⊙ E) W2), slope 0.2 as in the authors' code."""
    return leaky_relu((LAPLACIAN + np.eye(5)) @ e @ W1 + ((LAPLACIAN @ e) * e) @ W2)


def set_ngcf_layer(layer: NGCFLayer) -> None:
    """nn.Linear computes x Wᵀ + b, so its weight is the paper's W transposed. The paper's
    layer has no bias (the authors' code adds one); it is zero here."""
    with torch.no_grad():
        for linear, w in ((layer.w1, W1), (layer.w2, W2)):
            linear.weight.copy_(torch.tensor(w.T))
            linear.bias.zero_()


def test_the_normalised_adjacency_is_the_hand_laplacian():
    # Fails if the normalisation is D^-1 A (pow(-1)) or A itself: 1/sqrt(2) becomes 1/2 or 1.
    got = SymmetricAdjacency(N_USERS, N_ITEMS, PAIRS).matrix.to_dense().double().numpy()
    np.testing.assert_allclose(got, LAPLACIAN, atol=1e-7)


def test_an_ngcf_layer_is_the_papers_sum_and_bi_interaction_messages():
    layer = NGCFLayer(2, 2, message_dropout=0.5).eval()
    set_ngcf_layer(layer)
    with torch.no_grad():
        got = layer(laplacian_csr(), torch.tensor(EGO, dtype=torch.float32)).double().numpy()

    # u0 by hand: L E at u0 = (1/√2)·e_i0 + (1/2)·e_i1 = [1 + 1/√2, 1/√2 - 1/2].
    #   sum:  (L E + E) W1 at u0 = [2 + 1/√2, 1/√2 - 1/2] W1 = [2 + 1/√2, -2.5]
    #   bi:   (L E ⊙ E) W2 at u0 = [1 + 1/√2, 0] W2           = [1 + 1/√2, 0]
    #   LeakyReLU([3 + √2, -2.5])                           = [3 + √2, -0.5]
    # i1 by hand: L E at i1 = (e_u0 + e_u1)/2 = [0.5, 0.5].
    #   sum:  [2.5, -0.5] W1 = [2.5, -3];  bi: [1, -0.5] W2 = [0.5, -0.5]
    #   LeakyReLU([3, -3.5])                                 = [3, -0.7]
    # Each of these fails if the W2 (bi-interaction) term is dropped, if the self-loop I is
    # dropped (side instead of side + x), if the weights are transposed, or if the negative
    # slope is not 0.2 (or the activation is a ReLU: -0.5 and -0.7 become 0).
    np.testing.assert_allclose(got[0], [3 + math.sqrt(2), -0.5], atol=1e-5)
    np.testing.assert_allclose(got[3], [3.0, -0.7], atol=1e-5)
    np.testing.assert_allclose(got, ngcf_layer_reference(EGO), atol=1e-5)


def test_ngcf_concatenates_the_ego_rows_and_each_normalised_layer():
    model = NGCF(NGCFConfig(n_users=N_USERS, n_items=N_ITEMS, dim=2, layers=2)).eval()
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor(EGO[:N_USERS]))
        model.item_embedding.weight.copy_(torch.tensor(EGO[N_USERS:]))
    for conv in model.convs:
        set_ngcf_layer(conv)
    with torch.no_grad():
        users, items = model.embeddings(laplacian_csr())

    # E* = [E0 ‖ E1/|E1| ‖ E2/|E2|] per row (eq. 9; the row normalisation is the authors' code);
    # layer 2 takes layer 1's raw output. Fails if the ego block is normalised or dropped, or
    # if layer 2 is fed the normalised layer 1.
    e1 = ngcf_layer_reference(EGO)
    e2 = ngcf_layer_reference(e1)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    expected = np.concatenate([EGO, unit(e1), unit(e2)], axis=1)
    np.testing.assert_allclose(torch.cat([users, items]).double().numpy(), expected, atol=1e-5)


def test_bpr_loss_is_minus_log_sigmoid_of_the_score_gap():
    # -mean log σ(pos - neg) = mean log(1 + e^(neg - pos)): log(1 + e^-1) and log 2.
    # A flipped sign gives (log(1 + e) + log 2)/2 = 1.0032 instead of 0.5032.
    got = bpr_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0]))
    assert float(got) == pytest.approx((math.log(1 + math.exp(-1)) + math.log(2)) / 2, abs=1e-6)
    assert float(got) == pytest.approx(0.503204, abs=1e-6)


def test_lightgcn_loss_is_bpr_plus_l2_on_the_batchs_ego_rows_over_2b():
    """The L2 convention of the LightGCN authors' code, which `EmbeddingPropagation.loss` documents:
    l2 · Σ_b (|e_u^0|² + |e_i^0|² + |e_j^0|²) / (2B), on the ego (layer-0) rows of the batch,
    duplicates counted. With no layers the final embeddings are the ego rows, so every
    number below is a small integer."""
    model = LightGCN(LightGCNConfig(n_users=N_USERS, n_items=N_ITEMS, dim=2, layers=0, l2=0.5))
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor(EGO[:N_USERS]))
        model.item_embedding.weight.copy_(torch.tensor(EGO[N_USERS:]))
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([0, 2]), torch.tensor([2, 0])

    got = float(model.loss(laplacian_csr(), users, pos, neg))

    # u0 = [1, 0]: s(u0, i0) = 1, s(u0, i2) = -1, gap 2;  u1 = [0, 1]: s(u1, i2) = 1, s(u1, i0) = 1, gap 0.
    ranking = (math.log(1 + math.exp(-2)) + math.log(2)) / 2  # 0.410038
    # |u0|² + |u1|² + |i0|² + |i2|² + |i2|² + |i0|² = 1 + 1 + 2 + 2 + 2 + 2 = 10
    l2 = 0.5 * 10 / (2 * 2)  # 1.25
    # Fails if the L2 term is dropped (0.410), divided by B instead of 2B (2.910), or if the
    # BPR sign flips ((log(1 + e²) + log 2)/2 + 1.25 = 2.660).
    assert got == pytest.approx(ranking + l2, abs=1e-6)
    assert got == pytest.approx(1.660038, abs=1e-6)


def test_ngcf_loss_scores_the_final_embeddings_and_regularises_the_ego_rows():
    model = NGCF(NGCFConfig(n_users=N_USERS, n_items=N_ITEMS, dim=2, layers=1, l2=0.1)).eval()
    with torch.no_grad():
        model.user_embedding.weight.copy_(torch.tensor(EGO[:N_USERS]))
        model.item_embedding.weight.copy_(torch.tensor(EGO[N_USERS:]))
    set_ngcf_layer(model.convs[0])
    users, pos, neg = torch.tensor([0, 1, 0]), torch.tensor([1, 2, 0]), torch.tensor([2, 0, 2])

    got = float(model.loss(laplacian_csr(), users, pos, neg))

    e1 = ngcf_layer_reference(EGO)
    final = np.concatenate([EGO, e1 / np.linalg.norm(e1, axis=1, keepdims=True)], axis=1)
    u, p, n = final[users.numpy()], final[N_USERS + pos.numpy()], final[N_USERS + neg.numpy()]
    ranking = np.mean(np.log1p(np.exp((u * n).sum(1) - (u * p).sum(1))))
    rows = np.concatenate([users.numpy(), N_USERS + pos.numpy(), N_USERS + neg.numpy()])
    l2 = 0.1 * (EGO[rows] ** 2).sum() / (2 * len(users))
    # Fails if the L2 term is taken on the final (propagated) rows instead of the ego rows, or
    # any of the mistakes of the BPR and layer tests above.
    assert got == pytest.approx(ranking + l2, abs=1e-5)


def test_max_margin_loss_with_the_hinge_active_and_inactive():
    pos = torch.tensor([2.0, 0.5])
    neg = torch.tensor([[1.5, 0.0], [3.0, -1.0]])
    # max(0, neg - pos + 1): [1.5 - 2 + 1, 0 - 2 + 1] = [0.5, 0];  [3 - 0.5 + 1, -1 - 0.5 + 1] = [3.5, 0]
    # mean of the four = 1.0. A flipped sign (pos - neg + 1) gives 1.75; no margin, or no
    # clamp at 0 (a plain mean of neg - pos + 1), 0.625.
    assert float(max_margin_loss(pos, neg, margin=1.0)) == pytest.approx(1.0)


def test_pinsage_loss_is_the_hinge_of_normalised_query_scores_through_one_convolution():
    """One CONVOLVE (Algorithm 1) on three items, all of them seeds:

        n_v = Σ_u α_u ReLU(Q h_u + q) / Σ_u α_u        (importance pooling)
        z_v = h_v + normalize(ReLU(W [h_v ‖ n_v] + w))  (skip connection of the DGL example)
        s(q, i) = normalize(z_q) · z_i + b_i
    """
    model = PinSage(PinSageConfig(n_items=3, dim=2, layers=1, margin=1.0))
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    w_self, w_neighbours = torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, -1.0]])
    conv = model.convs[0]
    with torch.no_grad():
        model.input.id_embedding.weight.copy_(h)
        conv.q.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
        conv.q.bias.copy_(torch.tensor([0.0, -0.5]))
        # The paper concatenates [self ‖ neighbours]; this code (like DGL's example) puts the
        # neighbours first, so W's column blocks go in that order.
        conv.w.weight.copy_(torch.cat([w_neighbours, w_self], dim=1))
        conv.w.bias.zero_()
        model.item_bias.copy_(torch.tensor([0.0, 0.5, -0.5]))
    # Edges src -> dst with visit counts: 1 -> 0 (2), 2 -> 0 (1), 0 -> 1 (1), 1 -> 2 (3).
    hop = Hop(torch.arange(3), 3, torch.tensor([1, 2, 0, 1]), torch.tensor([0, 0, 1, 2]),
              torch.tensor([2.0, 1.0, 1.0, 3.0]))
    queries, pos, neg = torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([[2], [2]])

    got = float(model.loss([hop], None, queries, pos, neg))

    # By hand. Messages ReLU(Q h + q): item 0 [1, 0.5], item 1 [0, 0.5], item 2 [1, 0].
    #   z_0: n = (2·[0, 0.5] + [1, 0]) / 3 = [1/3, 1/3]; ReLU([1, 0] + [1/3, 0]) -> [1, 0]; z_0 = [2, 0]
    #   z_1: n = [1, 0.5]; ReLU([0, 1] + [0.5, 0.5]) = [0.5, 1.5] -> /√2.5; z_1 = [0.3162, 1.9487]
    #   z_2: n = [0, 0.5]; ReLU([1, -1] + [0.5, -0.5]) = [1.5, 0] -> [1, 0]; z_2 = [2, -1]
    # Query 0 (unit [1, 0]): s(0, 1) = 0.3162 + 0.5 = 0.8162, s(0, 2) = 2 - 0.5 = 1.5
    #   hinge max(0, 1.5 - 0.8162 + 1) = 1.6838 (active)
    # Query 1 (unit z_1/1.9742): s(1, 0) = 0.6325/1.9742 = 0.3204,
    #   s(1, 2) = (0.6325 - 1.9487)/1.9742 - 0.5 = -1.1667
    #   hinge max(0, -1.1667 - 0.3204 + 1) = 0 (inactive)
    # Loss = (1.6838 + 0) / 2 = 0.8419. A flipped sign gives 1.4014, no clamp 0.5984, no
    # margin 0.3419; swapping the neighbour and self halves of W, or dropping the item bias or
    # the query's normalisation, moves it too.
    expected = (1.5 - (math.sqrt(0.1) + 0.5) + 1) / 2
    assert got == pytest.approx(expected, abs=1e-5)
    assert got == pytest.approx(0.841886, abs=1e-5)
