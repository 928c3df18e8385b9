from django.core.management.base import BaseCommand, CommandError

from movie.catalogue.selectors import training_snapshot
from predictors.training import checkpoint_folder_metrics, live_version_metrics
from pytorch_models.models.names import SEQUENCE_MODELS, SERVED_MODELS

COLUMNS = ("recall@{k}", "ndcg@{k}", "hit@{k}", "precision@{k}", "mrr@{k}")


class Command(BaseCommand):
    help = (
        "Full-ranking recall, ndcg, hit, precision and MRR as a table: of the live versions on the "
        "catalogue's held-out ratings, or, with --checkpoint, of a checkpoint folder on a data set on "
        "disk (Gowalla train.txt/test.txt or a MovieLens folder)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", action="append", choices=SERVED_MODELS,
                            help="repeatable; default: all")
        parser.add_argument("--checkpoint",
                            help="a checkpoint folder written by `pytorch_models.train --out`")
        parser.add_argument("--dataset", choices=("gowalla", "movielens"), help="with --checkpoint")
        parser.add_argument("--data-dir", help="with --checkpoint: the data set's folder")
        parser.add_argument("--k", type=int, default=20)

    def handle(self, *args, model, checkpoint, dataset, data_dir, k, **options):
        if k < 1:
            raise CommandError("--k must be at least 1")
        if checkpoint:
            if model:
                raise CommandError("--model names live versions; it does not go with --checkpoint")
            if not (dataset and data_dir):
                raise CommandError("--checkpoint needs --dataset and --data-dir")
            rows = [(checkpoint, self._run(checkpoint_folder_metrics, dataset=dataset, data_dir=data_dir,
                                           checkpoint=checkpoint, k=k))]
        elif dataset or data_dir:
            raise CommandError("--dataset and --data-dir go with --checkpoint")
        else:
            names = model or SERVED_MODELS
            training_data = training_snapshot(stamps=any(name in SEQUENCE_MODELS for name in names))
            rows = [(name, self._run(live_version_metrics, model=name, training_data=training_data, k=k))
                    for name in names]
        columns = [c.format(k=k) for c in COLUMNS]
        self.stdout.write("| model | " + " | ".join(columns) + " |")
        self.stdout.write("|---" * (len(columns) + 1) + "|")
        for name, metrics in rows:
            self.stdout.write(f"| {name} | " + " | ".join(f"{metrics[c]:.4f}" for c in columns) + " |")

    @staticmethod
    def _run(metrics_of, **kwargs) -> dict:
        try:
            return metrics_of(**kwargs)
        except (LookupError, ValueError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
