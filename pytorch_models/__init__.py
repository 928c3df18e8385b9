"""Graph recommenders for Cinegraph: data, graphs, PinSage / NGCF / LightGCN, training, fold-in.

Pure PyTorch + DGL; nothing here imports Django, Redis, Kafka or boto3. Subpackages by role,
on floors that import only downward (docs/design.md, tests/test_layers.py): data/ and
linalg.py, models/, checkpoint.py, serving/, evaluation/, training/, then the command lines
train.py and evaluate.py.
"""

import os

# DGL picks its backend at import time; set it before any submodule imports dgl.
os.environ.setdefault("DGLBACKEND", "pytorch")
