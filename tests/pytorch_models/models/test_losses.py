import math

import torch

from pytorch_models.models.losses import bpr_loss, max_margin_loss


def test_bpr_loss_values():
    assert math.isclose(float(bpr_loss(torch.tensor([0.0]), torch.tensor([0.0]))), math.log(2), rel_tol=1e-6)
    assert float(bpr_loss(torch.tensor([10.0]), torch.tensor([-10.0]))) < 1e-6
    assert bpr_loss(torch.zeros(3), torch.zeros(3, 4)).shape == ()


def test_max_margin_loss_values():
    pos, neg = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.5])
    assert math.isclose(float(max_margin_loss(pos, neg, margin=1.0)), (0.0 + 1.5) / 2)
    assert float(max_margin_loss(torch.tensor([3.0]), torch.tensor([[0.0, 1.0]]), 1.0)) == 0.0
