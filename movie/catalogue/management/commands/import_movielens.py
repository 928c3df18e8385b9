from django.core.management.base import BaseCommand, CommandError

from movie.catalogue.services import MovieLensFormatError, movielens_import


class Command(BaseCommand):
    help = (
        "Import a MovieLens release (ml-latest-small, ml-25m, ml-1m or ml-100k folder) into the "
        "catalogue and the dataset ratings. Safe to run again: nothing changes the second time."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="folder of the unpacked release, e.g. data/ml-latest-small")

    def handle(self, *args, path, verbosity, **options):
        try:
            result = movielens_import(path=path, progress=verbosity > 0)
        except MovieLensFormatError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {result.format} release: {result.movies_created} movies created, "
                f"{result.movies_updated} updated, {result.genres_created} genres created, "
                f"{result.ratings_created} ratings added ({result.ratings_after} in total), "
                f"{result.tags_stored} movie tags."
            )
        )
