"""The int8 first pass's bound holds, and the scan's lists are the full product's."""

import pytest
import torch

from pytorch_models.serving.bounded_scan import UNION_SHARE, BoundedScan


def _table(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * torch.rand(n, 1, generator=g) * 3  # norms spread 0-3x


def _exact(table, bias, queries, k, owners, rows):
    scores = queries @ table.T + (0 if bias is None else bias)
    scores[owners, rows] = float("-inf")
    return torch.topk(scores, k, dim=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_approximate_score_lies_within_its_bound(seed):
    table = _table(3000, 48, seed)
    g = torch.Generator().manual_seed(100 + seed)
    # Queries unlike each other: a wide one, a small one, one sparse, one all negative.
    queries = torch.stack([torch.randn(48, generator=g) * 20, torch.randn(48, generator=g) * 1e-3,
                           torch.zeros(48).index_fill(0, torch.tensor([3, 9]), 5.0),
                           -torch.rand(48, generator=g)])
    approx, bound = BoundedScan(table).approximate(queries)
    error = (approx - queries.double() @ table.double().T).abs()
    assert (error <= bound).all()
    assert (error > 0).any()  # the pass is approximate: the test compares something


@pytest.mark.parametrize("with_bias", [False, True])
def test_the_scan_lists_exactly_the_top_k_outside_the_hidden(with_bias):
    table = _table(20_000, 64, 3)
    bias = torch.randn(20_000, generator=torch.Generator().manual_seed(4)) if with_bias else None
    queries = torch.randn(3, 64, generator=torch.Generator().manual_seed(5))
    none = torch.zeros(0, dtype=torch.long)
    top = _exact(table, bias, queries, 100, none, none).indices
    # Hide some of each query's own best movies, so the list must reach past them.
    owners = torch.tensor([0, 0, 1, 2, 2, 2])
    rows = torch.stack([top[0, 0], top[0, 5], top[1, 1], top[2, 0], top[2, 1], top[2, 2]])
    values, found = BoundedScan(table, bias).top_k(queries, 100, owners, rows)
    expected = _exact(table, bias, queries, 100, owners, rows)
    assert torch.equal(found, expected.indices)
    torch.testing.assert_close(values, expected.values)
    assert not set(found[2].tolist()) & set(rows[3:].tolist())


def test_scores_the_bound_cannot_separate_are_ranked_over_the_whole_table():
    """Rows nearly alike leave most of the table within the bound: the scan then scores every
    row, and the list is still exact."""
    g = torch.Generator().manual_seed(6)
    table = torch.ones(8000, 32) + 1e-4 * torch.randn(8000, 32, generator=g)
    scan = BoundedScan(table)
    query = torch.randn(1, 32, generator=g)
    approx, bound = scan.approximate(query)
    floor = torch.topk(approx - bound, 20).values[0, -1]
    assert int(((approx + bound) >= floor).sum()) > len(table) // UNION_SHARE  # the fallback's case
    none = torch.zeros(0, dtype=torch.long)
    values, rows = scan.top_k(query, 20, none, none)
    assert torch.equal(rows, _exact(table, None, query, 20, none, none).indices)
