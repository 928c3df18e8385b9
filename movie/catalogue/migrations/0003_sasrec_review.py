"""The paper review behind the sixth recommender, SASRec (issue 25), stored as data like the
other reviews (movie/migrations/0002 and 0006)."""

from django.db import migrations

SASREC = """
<h2>The problem</h2>
<p>The graph models read a visitor's history as a set: the movie clicked a minute ago counts
as much as one rated years ago, and the order says nothing. Yet what a person watches next
depends most on what they watched last. Markov-chain models capture that but look only one or
two steps back; recurrent networks look further but need much data and train slowly. SASRec
asks whether the self-attention of the Transformer can do both: look at the whole recent
sequence, and weigh each earlier item by how much it says about the next one.</p>

<h2>The method</h2>
<ul>
  <li>A user is the sequence of their last <em>n</em> items (200 for MovieLens-1M), oldest
  first. Each position's input is its item's embedding plus a learnt position embedding.</li>
  <li>Two blocks of <em>causal</em> self-attention and a point-wise feed-forward network,
  each with layer norm, dropout and a residual connection. Position t attends only to
  positions up to t, so it never sees what came after.</li>
  <li>The state at position t scores every item by a dot product with the same item
  embeddings: what comes next. Training asks each position to put the item that really
  followed above one random item the user never had (binary cross-entropy), with Adam.</li>
  <li>There are no user parameters. A new user's list is one forward pass over their items.</li>
</ul>
<p>The paper reports, on MovieLens-1M, hit@10 .8245 and ndcg@10 .5905 when each user's last
item is ranked among 100 sampled negatives, ahead of GRU4Rec, Caser and the Markov-chain
models it compares with.</p>

<h2>What Cinegraph implements, and how it differs</h2>
<ul>
  <li>Plain PyTorch (<code>pytorch_models/models/sasrec.py</code>) with the paper's
  MovieLens-1M settings: d 50, two blocks, one head, dropout 0.2, sequences of 200, batches of
  128 sequences, 200 epochs (about four and a half minutes on ml-latest-small on two cores).
  Positions are counted from the newest item back, so padding changes nothing.</li>
  <li>It trains on each user's ratings in timestamp order and is measured on the latest 20% of
  each user's ratings by time, with full ranking over every movie, not 100 sampled
  negatives: far lower figures than the paper's, and what a real page faces. The graph
  models hold out a random 20%, which asks for the middle of a history seen on both sides;
  on the time split every model was trained and compared with
  <code>python -m benchmarks.sequential</code>.</li>
  <li><strong>Where it wins:</strong> the next rating. Hit@20 of each user's first held-out
  rating is .164, LightGCN .162, NGCF .136, PinSage .151, the graph filter .149. Short
  histories are close (recall .180 against LightGCN's .184).</li>
  <li><strong>Where it loses:</strong> recall over the whole held-out fifth, .109 against
  LightGCN's .115, and the longer the history the further behind (the longest third of users:
  .043 against NGCF's .051): it predicts what follows the latest 200 ratings, while the
  held-out fifth of a long history spans months the order says little about.</li>
  <li><strong>No fine-tune when you click.</strong> A visitor's list is one forward pass over
  their latest clicks in the order they came, so the page reflects a click the moment it is
  stored; the live workers have nothing to do for this model. A movie clicked again moves to
  the end of the sequence. "Not interested" removes a movie from the list but does not change
  what it reads. The scheduled retrain continues training from the live version with every
  visitor's clicks as sequences of their own.</li>
  <li>No "because you watched": attention over an ordered history does not split into one
  share per movie, and the site names a reason only where it can show that it is one.</li>
</ul>
"""

REVIEW = {
    "slug": "sasrec",
    "title": "SASRec",
    "paper_title": "Self-Attentive Sequential Recommendation",
    "authors": "Wang-Cheng Kang, Julian McAuley",
    "venue": "ICDM 2018",
    "url": "https://arxiv.org/abs/1808.09781",
    "body": SASREC.strip(),
    "model_name": "sasrec",
}


def review_add(apps, schema_editor):
    apps.get_model("catalogue", "PaperReview").objects.update_or_create(slug=REVIEW["slug"], defaults=REVIEW)


def review_remove(apps, schema_editor):
    apps.get_model("catalogue", "PaperReview").objects.filter(slug=REVIEW["slug"]).delete()


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0002_dataset_user_and_import_progress")]

    operations = [migrations.RunPython(review_add, review_remove)]
