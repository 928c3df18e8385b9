"""The dataset ratings of a MovieLens import, millions of them: written a chunk of the ratings file
per transaction, each chunk in the same transaction as the progress record (`MovieLensImport`)
that moves past it. A run killed half-way has committed whole chunks and said so; the next run
starts at the first chunk not committed. Rows are upserted on the (dataset user, movie) unique key,
so a chunk written twice (or a release imported again) leaves the same rows.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from tqdm import tqdm

from movie.catalogue.models import DatasetRating, MovieLensImport
from pytorch_models.data.movielens import Release
from pytorch_models.data.movielens_ratings import CHUNK_BYTES, RatingsChunk, ratings_chunks, ratings_start

log = logging.getLogger(__name__)

# Rows per INSERT on MariaDB: 20,000 rows are ~0.8 MB of SQL, under max_allowed_packet (16 MB by
# default). The SQL is written here, not by mysqlclient's executemany: every value is a number or
# a "YYYY-MM-DD HH:MM:SS" numpy wrote, nothing to escape, and its per-value escaping took 3.6 us of
# CPU a rating against 0.8 us for the f-string (200k ratings: 0.72 s vs 0.16 s), 70 s of ml-25m.
STATEMENT_ROWS = 20_000

__all__ = ["CHUNK_BYTES", "import_record_begin", "ratings_check", "ratings_write", "release_key"]


def release_key(release: Release) -> str:
    """sha256 of the release's files (names and contents): the same release, wherever it lies,
    has the same key; one changed byte makes it another release. ~1.5 s a GB."""
    digest = hashlib.sha256(release.format.encode())
    for path in release.files():
        with path.open("rb") as handle:
            digest.update(path.name.encode() + b"\0" + hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()


def import_record_begin(*, release: Release, key: str, path: str) -> MovieLensImport:
    """The progress of this release's import: the one an earlier run left, or a new one at the
    first rating (replacing the folder's record of other contents: the bound of one per folder)."""
    record = MovieLensImport.objects.filter(key=key).first()
    if record is not None:
        return record
    MovieLensImport.objects.filter(path=path).delete()
    return MovieLensImport.objects.create(key=key, path=path, ratings_offset=ratings_start(release),
                                          started_at=timezone.now())


def ratings_check(release: Release, *, progress: bool) -> int:
    """Read the whole ratings file before anything is written (a bad line raises
    MovieLensFormatError naming it): a bad release leaves nothing half-imported. Returns how many
    ratings it holds."""
    rows = 0
    size = release.ratings.stat().st_size
    with tqdm(total=size, desc="checking ratings", unit="B", unit_scale=True, disable=not progress) as bar:
        for chunk in ratings_chunks(release):
            rows += len(chunk)
            bar.update(chunk.end - bar.n)
    return rows


def ratings_write(release: Release, record: MovieLensImport, movie_ids: set[int], *, progress: bool,
                  chunk_bytes: int = CHUNK_BYTES) -> None:
    """Upsert the ratings from the record's offset to the end of the file, one transaction per
    chunk; ratings of movies the release does not list are skipped (and counted)."""
    known = _lookup(movie_ids)
    size = release.ratings.stat().st_size
    with tqdm(total=size, initial=record.ratings_offset, desc="ratings", unit="B", unit_scale=True,
              disable=not progress) as bar:
        for chunk in ratings_chunks(release, start=record.ratings_offset, first_row=record.ratings_rows,
                                    chunk_bytes=chunk_bytes):
            listed = known[np.clip(chunk.movies, 0, len(known) - 1)]
            with transaction.atomic():
                _chunk_upsert(chunk, listed)
                MovieLensImport.objects.filter(pk=record.pk).update(
                    ratings_offset=chunk.end, ratings_rows=chunk.first_row + len(chunk),
                    ratings_skipped=F("ratings_skipped") + int(len(chunk) - listed.sum()),
                )
            bar.update(chunk.end - bar.n)
    record.refresh_from_db()
    if record.ratings_skipped:
        log.warning("skipped %d ratings of movies missing from %s", record.ratings_skipped,
                    Path(release.movies).name)


def _lookup(movie_ids: set[int]) -> np.ndarray:
    """known[m] is True for a listed movie id m; the last entry (ids beyond the largest) is False."""
    ids = np.fromiter(movie_ids, dtype=np.int64, count=len(movie_ids))
    known = np.zeros(int(ids.max(initial=-1)) + 2, dtype=bool)
    known[ids] = True
    return known


def _chunk_upsert(chunk: RatingsChunk, listed: np.ndarray) -> None:
    """The chunk's rows in multi-row INSERTs; a pair already there gets the file's rating and time
    (a pair twice in the file: the later line wins)."""
    if not listed.any():
        return
    meta = DatasetRating._meta
    quote = connection.ops.quote_name
    user, movie, rating, rated_at = (quote(meta.get_field(name).column)
                                     for name in ("dataset_user", "movie", "rating", "rated_at"))
    insert = f"INSERT INTO {quote(meta.db_table)} ({user}, {movie}, {rating}, {rated_at}) VALUES "
    columns = (chunk.users[listed].tolist(), chunk.movies[listed].tolist(), chunk.ratings[listed].tolist(),
               chunk.rated_at_text()[listed].tolist())
    with connection.cursor() as cursor:
        if connection.vendor == "mysql":
            upsert = f" ON DUPLICATE KEY UPDATE {rating} = VALUES({rating}), {rated_at} = VALUES({rated_at})"
            for start in range(0, len(columns[0]), STATEMENT_ROWS):
                rows = zip(*(column[start:start + STATEMENT_ROWS] for column in columns), strict=True)
                cursor.execute(insert + ",".join(f"({u},{m},{r},'{t}')" for u, m, r, t in rows) + upsert)
        else:  # SQLite (and PostgreSQL) name the conflict's columns; one prepared statement
            cursor.executemany(
                f"{insert}(%s, %s, %s, %s) ON CONFLICT ({user}, {movie}) DO UPDATE SET "
                f"{rating} = excluded.{rating}, {rated_at} = excluded.{rated_at}",
                list(zip(*columns, strict=True)))
