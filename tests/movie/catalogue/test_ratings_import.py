"""An import killed half-way (SIGKILL of `manage.py import_movielens`) and run again leaves the
same tables as one that was never interrupted, and the second run starts where the first stopped.

The kill lands at a known rating: another transaction has inserted the pair (user 20, movie 7)
and not committed, so the import waits on that row's lock in the chunk holding it, with the
chunks before it committed. MariaDB's row locks make the wait; SQLite would lock the whole file.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from movie.catalogue.models import DatasetRating, Genre, Movie, MovieLensImport, MovieTag
from movie.catalogue.services import movielens_import
from pytorch_models.data.movielens import movies_read, release_detect

ROOT = Path(__file__).resolve().parents[3]
USERS, MOVIES = 40, 30
HELD = (20, 7)  # the (user, movie) the import waits on: half-way through the file

pytestmark = pytest.mark.skipif(connection.vendor != "mysql", reason="needs MariaDB's row locks")


def _release_write(folder: Path) -> Path:
    """40 users who each rated the 30 movies: 1,200 ratings sorted by user, as MovieLens sorts them."""
    folder.mkdir()
    genres = ["Drama", "Comedy|Romance", "Action|Sci-Fi"]
    (folder / "movies.csv").write_text("movieId,title,genres\n" + "".join(
        f"{m},Movie {m} ({1990 + m}),{genres[m % 3]}\n" for m in range(1, MOVIES + 1)))
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{m},{((u * 7 + m * 3) % 10 + 1) / 2},{1_000_000_000 + 1000 * u + m}\n"
        for u in range(1, USERS + 1) for m in range(1, MOVIES + 1)))
    (folder / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,7,Slow,1\n2,7,slow,2\n")
    return folder


def _state():
    return (
        sorted(Movie.objects.values_list("id", "title", "year", "ratings_count", "rating_score")),
        sorted(DatasetRating.objects.values_list("dataset_user", "movie_id", "rating", "rated_at")),
        sorted(Movie.genres.through.objects.values_list("movie_id", "genre__name")),
        sorted(MovieTag.objects.values_list("movie_id", "name", "users")),
    )


def _lock_waits(cursor) -> int:
    cursor.execute("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'")
    return cursor.fetchone()[0]


def _import_killed_at_the_held_pair(folder: Path, env: dict[str, str]) -> None:
    import MySQLdb

    # Movie 7 as the file has it, so the import's catalogue step leaves its row (and lock) alone.
    row = next(m for m in movies_read(release_detect(folder)) if m.movie_id == HELD[1])
    Movie.objects.create(id=row.movie_id, title=row.title, year=row.year)
    blocker = MySQLdb.connect(**connection.get_connection_params())
    try:
        cursor = blocker.cursor()
        cursor.execute("START TRANSACTION")
        cursor.execute("INSERT INTO movie_datasetrating (dataset_user, movie_id, rating, rated_at) "
                       "VALUES (%s, %s, 1.0, '2001-01-01 00:00:00')", HELD)
        child = subprocess.Popen(
            [sys.executable, "manage.py", "import_movielens", str(folder), "--chunk-bytes", "256",
             "--verbosity", "0"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            # Starting manage.py takes seconds (more on a busy machine); the wait, once it begins,
            # is seen within a poll, far inside InnoDB's 50 s lock wait timeout.
            deadline = time.monotonic() + 300
            while not _lock_waits(cursor):
                assert child.poll() is None, child.stdout.read().decode()
                assert time.monotonic() < deadline, "the import never reached the held rating"
                time.sleep(0.25)  # INNODB_TRX is refreshed only when not read for 100 ms
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
        blocker.rollback()
    finally:
        blocker.close()


# serialized_rollback, as every transactional test here: the flush after it leaves the content
# types for the next one to reload (tests/movie/test_migrations.py says why).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_killed_import_resumes_to_the_same_tables(tmp_path, app_process_env):
    folder = _release_write(tmp_path / "release")
    _import_killed_at_the_held_pair(folder, app_process_env)

    record = MovieLensImport.objects.get()
    held_row = (HELD[0] - 1) * MOVIES + HELD[1]  # the held pair's rating number in the file
    assert record.finished_at is None and 0 < record.ratings_rows < held_row
    assert DatasetRating.objects.count() == record.ratings_rows  # whole chunks, and no more
    assert not DatasetRating.objects.filter(dataset_user__gte=HELD[0]).exclude(
        dataset_user=HELD[0], movie_id__lt=HELD[1]).exists()

    resumed = movielens_import(path=folder, progress=False, chunk_bytes=256)

    assert (resumed.ratings_resumed, resumed.ratings_created) == (
        record.ratings_rows, USERS * MOVIES - record.ratings_rows)
    after_kill = _state()
    for model in (DatasetRating, MovieTag, Movie, Genre, MovieLensImport):
        model.objects.all().delete()
    movielens_import(path=folder, progress=False)
    assert _state() == after_kill
    assert len(after_kill[1]) == USERS * MOVIES and after_kill[3] == [(7, "slow", 2)]
