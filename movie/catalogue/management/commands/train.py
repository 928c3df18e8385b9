from django.core.management.base import BaseCommand, CommandError

from movie.catalogue.selectors import training_snapshot
from predictors import registry
from predictors.versions import version_make
from pytorch_models.models.names import GRADIENT_TRAINED_MODELS, POPULAR, SEQUENCE_MODELS, SERVED_MODELS


class Command(BaseCommand):
    help = "Train recommenders on the imported ratings and publish each as its newest version."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--model", choices=SERVED_MODELS)
        which.add_argument("--missing", action="store_true",
                           help="every model with no published version yet, the untrained ones first")
        parser.add_argument("--epochs", type=int, help="override the model's default number of epochs")

    def handle(self, *args, model, missing, epochs, verbosity, **options):
        if missing:
            # Popular, then the graph filter (0.2 s), then the GNNs (minutes): the site has
            # lists to show while they train.
            order = sorted(SERVED_MODELS, key=lambda m: (m != POPULAR, m in GRADIENT_TRAINED_MODELS))
            models = [m for m in order if registry.latest_version(m) is None]
        else:
            models = [model]
        training_data = training_snapshot(stamps=any(m in SEQUENCE_MODELS for m in models))
        for name in models:
            try:
                made = version_make(model=name, training_data=training_data, epochs=epochs,
                                    progress=verbosity > 0)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            figures = ", ".join(f"{key} {value:.4f}" for key, value in sorted(made.metrics.items()))
            self.stdout.write(self.style.SUCCESS(f"published {name} {made.version}: {figures}"))
        if not models:
            self.stdout.write("every model has a published version")
