from django.core.management.base import BaseCommand, CommandError

from movie.catalogue.ratings_import import CHUNK_BYTES
from movie.catalogue.services import MovieLensFormatError, movielens_import


class Command(BaseCommand):
    help = (
        "Import a MovieLens release (an ml-latest-small, ml-25m, ml-32m, ml-10m, ml-1m or ml-100k folder) "
        "into the catalogue and the dataset ratings. Safe to run again: nothing changes the second "
        "time, and a run that was killed goes on where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="folder of the unpacked release, e.g. data/ml-latest-small")
        parser.add_argument("--chunk-bytes", type=int, default=CHUNK_BYTES,
                            help=f"bytes of the ratings file per transaction (default {CHUNK_BYTES}, "
                                 "~150k ratings of ml-25m)")

    def handle(self, *args, path, chunk_bytes, verbosity, **options):
        if chunk_bytes < 1:
            raise CommandError("--chunk-bytes must be at least 1.")
        try:
            result = movielens_import(path=path, progress=verbosity > 0, chunk_bytes=chunk_bytes)
        except MovieLensFormatError as exc:
            raise CommandError(str(exc)) from exc
        if result.already_imported:
            ratings = f"ratings already imported ({result.ratings_after} in total)"
        else:
            resumed = f", resumed after {result.ratings_resumed}" if result.ratings_resumed else ""
            ratings = f"{result.ratings_created} ratings added{resumed} ({result.ratings_after} in total)"
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {result.format} release: {result.movies_created} movies created, "
                f"{result.movies_updated} updated, {result.genres_created} genres created, "
                f"{result.users_created} users created, {ratings}, {result.tags_stored} movie tags."
            )
        )
