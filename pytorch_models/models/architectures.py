"""The architecture behind each model name: its config dataclass and `nn.Module` class.

The list of recommenders itself is `pytorch_models.models.names`; popular has no class and
the graph filter no module (nothing is learnt), so neither is in CLASSES.
"""

from __future__ import annotations

from torch import nn

from pytorch_models.models.graphfilter.model import GraphFilterConfig
from pytorch_models.models.lightgcn import LightGCN, LightGCNConfig
from pytorch_models.models.ngcf import NGCF, NGCFConfig
from pytorch_models.models.pinsage.model import PinSage, PinSageConfig
from pytorch_models.models.sasrec import SASRec, SASRecConfig

CONFIGS = {"lightgcn": LightGCNConfig, "ngcf": NGCFConfig, "pinsage": PinSageConfig,
           "graphfilter": GraphFilterConfig, "sasrec": SASRecConfig}
CLASSES = {"lightgcn": LightGCN, "ngcf": NGCF, "pinsage": PinSage, "sasrec": SASRec}


def build_model(model_name: str, config: dict) -> nn.Module:
    return CLASSES[model_name](CONFIGS[model_name](**config))
