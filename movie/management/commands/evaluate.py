from django.core.management.base import BaseCommand, CommandError

from movie.selectors import training_snapshot
from predictors.recommend import MODELS
from predictors.training import evaluate_published

COLUMNS = ("recall@20", "ndcg@20", "hit@20", "precision@20", "mrr@20")


class Command(BaseCommand):
    help = "Recall, ndcg and hit @20 of the live versions on the held-out ratings, as a table."

    def add_arguments(self, parser):
        parser.add_argument("--model", action="append", choices=MODELS, help="repeatable; default: all")

    def handle(self, *args, model, **options):
        catalogue = training_snapshot()
        self.stdout.write("| model | " + " | ".join(COLUMNS) + " |")
        self.stdout.write("|---" * (len(COLUMNS) + 1) + "|")
        for name in model or MODELS:
            try:
                metrics = evaluate_published(model=name, catalogue=catalogue)
            except (LookupError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"| {name} | " + " | ".join(f"{metrics[c]:.4f}" for c in COLUMNS) + " |")
