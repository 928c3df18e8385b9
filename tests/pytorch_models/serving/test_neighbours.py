"""Each movie's nearest movies, computed in chunks, are the brute-force cosine neighbours."""

import torch

from pytorch_models.serving import neighbours


def test_chunked_neighbours_are_each_rows_best_cosines_without_itself(monkeypatch, tmp_path):
    monkeypatch.setattr(neighbours, "SCRATCH_BYTES", 64 * 300 * 4)  # chunks of 64 rows, the last one short
    norms = torch.arange(1, 301).unsqueeze(1)
    table = torch.randn(300, 16, generator=torch.Generator().manual_seed(0)) * norms
    unit = torch.nn.functional.normalize(table, dim=1)
    cosine = unit @ unit.T
    cosine.fill_diagonal_(float("-inf"))
    expected = torch.topk(cosine, 10, dim=1)

    neighbours.neighbours_write(tmp_path, table * 2.5)  # the scale of a row changes nothing
    rows, scores = neighbours.neighbours_load(tmp_path)

    assert rows.shape == (300, neighbours.K) and rows.dtype == torch.int32
    assert torch.equal(rows[:, :10].long(), expected.indices)
    torch.testing.assert_close(scores[:, :10], expected.values)
    assert not (rows == torch.arange(300).unsqueeze(1)).any()


def test_a_version_without_the_table_and_a_catalogue_smaller_than_k(tmp_path):
    assert neighbours.neighbours_load(tmp_path) is None
    rows, _ = neighbours.cosine_neighbours(torch.randn(5, 4))
    assert rows.shape == (5, 4)
    assert neighbours.listed((rows, torch.zeros(5, 4)), 0, {int(rows[0, 0])}, 4) is None  # 3 left of 4
