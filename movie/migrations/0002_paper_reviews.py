"""The paper reviews behind the three graph recommenders, stored as data so pages are DB-backed."""

from django.db import migrations

PINSAGE = """
<h2>The problem</h2>
<p>Pinterest wanted to recommend pins from a graph of billions of pins and boards. Graph
convolutional networks (GCNs) had been shown to learn good node embeddings by repeatedly
mixing each node's features with those of its neighbours, but the published variants needed the
whole graph Laplacian in memory and touched every node at every step. That does not scale to
three billion nodes and eighteen billion edges.</p>

<h2>The method</h2>
<p>PinSage makes graph convolution local. Instead of using every neighbour, it runs short
random walks from each node and keeps the neighbours visited most often; visit counts become
<em>importance weights</em>, and a node's neighbourhood is aggregated by importance-weighted
pooling rather than a plain mean. Each convolution layer concatenates a node's own
representation with the pooled neighbourhood, passes it through a dense layer with a ReLU and
normalises the result. Stacking two such layers gives an embedding that depends on a two-hop,
sampled computation graph, built on the fly per mini-batch ("producer–consumer" batching on
CPUs and GPUs).</p>
<p>Training is supervised by pairs of items engaged with one after the other. The loss is a
<em>max-margin</em> ranking loss: the positive item must score higher than a negative one by a
margin. Random negatives soon become too easy, so PinSage adds a <em>curriculum</em> of hard
negatives: items that are related to the query but not the positive (drawn from
personalised-PageRank ranks), introduced a few more per epoch. Inference uses MapReduce to
compute every embedding once, then nearest-neighbour search serves recommendations.</p>

<h2>What Cinegraph implements, and how it differs</h2>
<ul>
  <li>The graph is MovieLens: users and movies, with an edge per rating. Item-to-item
  neighbourhoods come from random walks movie → user → movie, and the top visited movies are
  pooled with their visit counts as weights, as in the paper.</li>
  <li>Item features are what MovieLens gives us: genres (multi-hot), release year and title
  words, instead of Pinterest's visual and text embeddings.</li>
  <li>The loss is the paper's max-margin loss with random negatives, plus hard negatives drawn
  from the walk neighbourhood of the positive, added gradually.</li>
  <li>Everything runs on one CPU machine: the graph has thousands of nodes, not billions, so
  there is no MapReduce and no sharded embedding store.</li>
  <li>Cinegraph adds what the paper did not do: each visitor becomes a new user node as soon as
  they click, and the model is briefly fine-tuned on their edges, so their page changes within
  seconds.</li>
</ul>
"""

NGCF = """
<h2>The problem</h2>
<p>Matrix factorisation learns one vector per user and per item and scores a pair by their dot
product. The collaborative signal — users who watched the same things — only reaches the
embeddings indirectly, through the loss. Neural Graph Collaborative Filtering (NGCF) argues
that this signal should be built into the embeddings themselves by propagating them over the
user–item graph.</p>

<h2>The method</h2>
<p>NGCF starts from free embeddings for users and items and runs several layers of
<em>embedding propagation</em> over the bipartite interaction graph. At each layer a node
receives a message from each neighbour made of two parts: a linear transform of the neighbour's
embedding and a <em>bi-interaction</em> term, the element-wise product of the neighbour's and
the node's own embeddings, also transformed. Messages are normalised by the square root of the
two nodes' degrees, summed with a self-connection, and passed through a LeakyReLU (with
dropout on messages and nodes during training). The final representation concatenates the
outputs of all layers, so it mixes one-hop, two-hop and three-hop collaborative signals, and
the score is the inner product of the user and item representations. Training uses the
<em>BPR</em> pairwise loss: an observed item should score higher than an unobserved one,
with L2 regularisation.</p>

<h2>What Cinegraph implements, and how it differs</h2>
<ul>
  <li>The propagation is written as sparse-matrix products over the normalised adjacency of
  the MovieLens user–movie graph, with the paper's two weight matrices per layer, the
  bi-interaction term and LeakyReLU; layer outputs are concatenated.</li>
  <li>Training is BPR with one sampled negative per positive, as in the paper.</li>
  <li>NGCF is transductive: a new visitor has no embedding. Cinegraph adds a user node for each
  visitor and fine-tunes briefly on their clicks (and on sampled existing edges so that
  item embeddings move little), rather than retraining the whole model.</li>
</ul>
"""

LIGHTGCN = """
<h2>The problem</h2>
<p>NGCF borrowed its layers from graph networks for node classification, where nodes carry rich
features. In collaborative filtering the input of each node is only an ID embedding. He et al.
asked which parts of NGCF actually help, and found through ablations that the feature
transformations and the non-linear activations do not: removing them makes the model both
simpler and more accurate.</p>

<h2>The method</h2>
<p>LightGCN keeps only neighbourhood aggregation. At each layer a user's embedding becomes the
degree-normalised sum of its items' embeddings, and an item's the sum of its users' — no weight
matrices, no self-connection, no activation. The only trainable parameters are the layer-0
embeddings. The final embedding is a weighted sum (uniform weights in the paper) of the
embeddings from every layer, which also counters over-smoothing; the score is again an inner
product, and training uses BPR with L2 regularisation on the initial embeddings only.</p>

<h2>What Cinegraph implements, and how it differs</h2>
<ul>
  <li>The model is a few lines: repeated multiplication by the symmetrically normalised
  adjacency matrix of the user–movie graph, averaged over layers.</li>
  <li>Because it has no transforms, folding in a new visitor is cheap: their embedding is
  mostly determined by the movies they clicked, and a short fine-tune adjusts it.</li>
  <li>It is our strongest baseline and the one the other two have to beat on the
  “Measured on Cinegraph” numbers below.</li>
</ul>
"""

REVIEWS = [
    {
        "slug": "pinsage",
        "title": "PinSage",
        "paper_title": "Graph Convolutional Neural Networks for Web-Scale Recommender Systems",
        "authors": "Rex Ying, Ruining He, Kaifeng Chen, Pong Eksombatchai, "
                   "William L. Hamilton, Jure Leskovec",
        "venue": "KDD 2018",
        "url": "https://arxiv.org/abs/1806.01973",
        "body": PINSAGE.strip(),
        "model_name": "pinsage",
    },
    {
        "slug": "ngcf",
        "title": "NGCF",
        "paper_title": "Neural Graph Collaborative Filtering",
        "authors": "Xiang Wang, Xiangnan He, Meng Wang, Fuli Feng, Tat-Seng Chua",
        "venue": "SIGIR 2019",
        "url": "https://arxiv.org/abs/1905.08108",
        "body": NGCF.strip(),
        "model_name": "ngcf",
    },
    {
        "slug": "lightgcn",
        "title": "LightGCN",
        "paper_title": "LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation",
        "authors": "Xiangnan He, Kuan Deng, Xiang Wang, Yan Li, Yongdong Zhang, Meng Wang",
        "venue": "SIGIR 2020",
        "url": "https://arxiv.org/abs/2002.02126",
        "body": LIGHTGCN.strip(),
        "model_name": "lightgcn",
    },
]


def reviews_add(apps, schema_editor):
    PaperReview = apps.get_model("movie", "PaperReview")
    for review in REVIEWS:
        PaperReview.objects.update_or_create(slug=review["slug"], defaults=review)


def reviews_remove(apps, schema_editor):
    PaperReview = apps.get_model("movie", "PaperReview")
    PaperReview.objects.filter(slug__in=[r["slug"] for r in REVIEWS]).delete()


class Migration(migrations.Migration):
    dependencies = [("movie", "0001_initial")]

    operations = [migrations.RunPython(reviews_add, reviews_remove)]
