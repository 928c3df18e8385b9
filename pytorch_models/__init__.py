"""Graph recommenders for Cinegraph: data, graphs, PinSage / NGCF / LightGCN, training, fold-in.

Pure PyTorch + DGL; nothing here imports Django, Redis, Kafka or boto3.
"""

import os

# DGL picks its backend at import time; set it before any submodule imports dgl.
os.environ.setdefault("DGLBACKEND", "pytorch")
