from django.core.management.base import BaseCommand, CommandError

from movie.selectors import training_snapshot
from predictors.recommend import MODELS
from predictors.training import train_and_publish


class Command(BaseCommand):
    help = "Train a recommender on the imported ratings and publish it as the newest version."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, choices=MODELS)
        parser.add_argument("--epochs", type=int, help="override the model's default number of epochs")

    def handle(self, *args, model, epochs, verbosity, **options):
        catalogue = training_snapshot()
        try:
            version, metrics = train_and_publish(
                model=model, catalogue=catalogue, epochs=epochs, progress=verbosity > 0
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        figures = ", ".join(f"{name} {value:.4f}" for name, value in sorted(metrics.items()))
        self.stdout.write(self.style.SUCCESS(f"published {model} {version}: {figures}"))
