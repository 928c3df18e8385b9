import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from benchmarks.synthetic_movielens import release_write
from movie.catalogue.models import DatasetRating, DatasetUser, Genre, Movie, MovieLensImport, MovieTag
from movie.catalogue.services import MovieLensFormatError, movielens_import
from movie.tracking.services import user_signup
from tests.movie.conftest import DATA, FIXTURES


def _state():
    return (
        sorted(Movie.objects.values_list("id", "title", "year", "imdb_id", "tmdb_id", "ratings_count",
                                         "rating_score")),
        sorted(DatasetRating.objects.values_list("dataset_user", "movie_id", "rating", "rated_at")),
        sorted(Movie.genres.through.objects.values_list("movie_id", "genre__name")),
        sorted(MovieTag.objects.values_list("movie_id", "name", "users")),
        sorted(DatasetUser.objects.values_list("dataset_user", "gender", "age", "occupation", "zip_code")),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("folder", "movies", "ratings", "skipped"),
    [("ml-latest-tiny", 5, 7, 1), ("ml-1m-tiny", 4, 5, 0), ("ml-10m-tiny", 3, 4, 0),
     ("ml-100k-tiny", 5, 6, 0)],
)
def test_import_is_idempotent(folder, movies, ratings, skipped):
    first = movielens_import(path=FIXTURES / folder, progress=False)
    assert (first.movies_created, first.ratings_created, first.ratings_skipped) == (movies, ratings, skipped)
    assert not first.already_imported
    before = _state()

    second = movielens_import(path=FIXTURES / folder, progress=False)

    assert (second.movies_created, second.movies_updated, second.genres_created,
            second.ratings_created, second.users_created, second.ratings_skipped) == (0, 0, 0, 0, 0, skipped)
    assert second.already_imported  # the release is known: its ratings file was not read again
    assert _state() == before
    assert Movie.objects.count() == movies and DatasetRating.objects.count() == ratings


@pytest.mark.django_db
def test_import_stores_parsed_fields():
    movielens_import(path=FIXTURES / "ml-latest-tiny", progress=False)
    toy = Movie.objects.get(pk=1)
    assert (toy.title, toy.year, toy.imdb_id, toy.tmdb_id) == ("Toy Story", 1995, "0114709", 862)
    assert sorted(toy.genres.values_list("name", flat=True)) == [
        "Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert Movie.objects.get(pk=40697).year is None
    assert not Genre.objects.filter(name="(no genres listed)").exists()
    assert DatasetRating.objects.get(dataset_user=1, movie_id=11).rating == 3.5


@pytest.mark.django_db
def test_import_stores_normalised_tags_with_their_users():
    """tags.csv: "Pixar", " pixar " and "PIXAR" are one tag of two users; blank tags and tags
    of movies missing from movies.csv are dropped."""
    result = movielens_import(path=FIXTURES / "ml-latest-tiny", progress=False)

    assert sorted(MovieTag.objects.values_list("movie_id", "name", "users")) == [
        (1, "pixar", 2), (11, "pixar", 1), (11, "politics", 1), (27008, "vampires", 1),
        (40697, "space opera", 1),
    ]
    assert result.tags_stored == 5


@pytest.mark.django_db
def test_import_keeps_the_demographics_of_ml1m_and_ml100k_users():
    result = movielens_import(path=FIXTURES / "ml-1m-tiny", progress=False)
    assert result.users_created == 3
    assert _state()[4] == [(1, "F", 1, "K-12 student", "48067"), (2, "M", 56, "self-employed", "70072"),
                           (3, "M", 25, "scientist", "55117")]

    movielens_import(path=FIXTURES / "ml-100k-tiny", progress=False)
    assert DatasetUser.objects.count() == 3 + 6
    assert DatasetUser.objects.filter(dataset_user=196).values_list("age", "gender", "occupation").get() == (
        49, "M", "writer")


@pytest.mark.django_db
def test_import_in_chunks_of_a_line_leaves_the_same_tables(tmp_path):
    """Each line its own transaction (and progress row update) or the whole file in one:
    the same tables."""
    movielens_import(path=FIXTURES / "ml-latest-tiny", progress=False)
    whole = _state()
    for model in (DatasetRating, MovieTag, Movie, Genre, MovieLensImport):
        model.objects.all().delete()

    result = movielens_import(path=FIXTURES / "ml-latest-tiny", progress=False, chunk_bytes=1)

    assert _state() == whole and result.ratings_created == 7
    record = MovieLensImport.objects.get()
    assert (record.ratings_rows, record.ratings_skipped, record.finished_at is not None) == (8, 1, True)


@pytest.mark.django_db
def test_generated_release_imports_whole(tmp_path):
    """benchmarks.synthetic_movielens writes what the importer takes, in chunks of 4 kB."""
    figures = release_write(tmp_path / "synthetic", 3_000, seed=1, progress=False)

    result = movielens_import(path=tmp_path / "synthetic", progress=False, chunk_bytes=4096)

    assert (result.movies_created, result.ratings_created, result.ratings_skipped) == (
        figures["movies"], 3_000, 0)
    assert Movie.objects.aggregate(n=Sum("ratings_count"))["n"] == 3_000
    assert Movie.objects.filter(ratings_count__gt=0).count() == figures["movies_rated"]
    assert DatasetRating.objects.values("dataset_user").distinct().count() == figures["users"]


@pytest.mark.django_db
def test_reimport_follows_changes_in_the_files(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,Old Title (1990),Drama|War\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n7,1,2.0,1000\n")
    (tmp_path / "tags.csv").write_text("userId,movieId,tag,timestamp\n7,1,gone,1\n7,1,kept,1\n")
    movielens_import(path=tmp_path, progress=False)
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,New Title (1991),Drama|Comedy\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n7,1,4.5,2000\n")
    (tmp_path / "tags.csv").write_text("userId,movieId,tag,timestamp\n7,1,kept,1\n8,1,Kept,1\n8,1,new,1\n")

    result = movielens_import(path=tmp_path, progress=False)

    movie = Movie.objects.get(pk=1)
    assert (result.movies_updated, movie.title, movie.year) == (1, "New Title", 1991)
    assert sorted(movie.genres.values_list("name", flat=True)) == ["Comedy", "Drama"]
    assert DatasetRating.objects.get().rating == 4.5
    assert sorted(MovieTag.objects.values_list("name", "users")) == [("kept", 2), ("new", 1)]
    assert MovieLensImport.objects.count() == 1  # the folder's record of its old contents went


@pytest.mark.django_db
def test_failed_import_leaves_nothing(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,oops,4.0,1\n")
    with pytest.raises(CommandError, match="line 2"):
        call_command("import_movielens", str(tmp_path), verbosity=0)
    assert not Movie.objects.exists() and not DatasetRating.objects.exists()
    assert not MovieLensImport.objects.exists()


@pytest.mark.django_db
def test_bad_line_at_the_end_of_a_chunked_file_leaves_nothing(tmp_path):
    """The whole ratings file is checked before the first chunk is committed."""
    lines = "".join(f"{user},1,4.0,{1000 + user}\n" for user in range(1, 200))
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (tmp_path / "ratings.csv").write_text(f"userId,movieId,rating,timestamp\n{lines}1,1,9.0,1\n")
    with pytest.raises(MovieLensFormatError, match="line 200 is not a rating: a rating outside"):
        movielens_import(path=tmp_path, progress=False, chunk_bytes=64)
    assert not Movie.objects.exists() and not DatasetRating.objects.exists()


@pytest.mark.django_db
def test_bad_users_file_leaves_nothing(tmp_path):
    (tmp_path / "movies.dat").write_text("1::A (2000)::Drama\n")
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n")
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::F::1::10\n")
    with pytest.raises(MovieLensFormatError, match="users.dat line 2 is not a user"):
        movielens_import(path=tmp_path, progress=False)
    assert not Movie.objects.exists() and not DatasetUser.objects.exists()


@pytest.mark.django_db
def test_command_reports_missing_and_unknown_folders(tmp_path):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_movielens", str(tmp_path / "missing"), verbosity=0)
    with pytest.raises(CommandError, match="holds no MovieLens release"):
        call_command("import_movielens", str(FIXTURES / "not-movielens"), verbosity=0)


@pytest.mark.django_db
def test_command_imports_and_reports(capsys):
    call_command("import_movielens", str(FIXTURES / "ml-1m-tiny"), verbosity=0)
    assert "4 movies created" in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.skipif(not (DATA / "ml-latest-small").is_dir(), reason="data/ml-latest-small is not checked out")
def test_import_real_latest_small_twice():
    movielens_import(path=DATA / "ml-latest-small", progress=False)
    assert (Movie.objects.count(), DatasetRating.objects.count()) == (9_742, 100_836)

    again = movielens_import(path=DATA / "ml-latest-small", progress=False)

    assert (again.movies_created, again.movies_updated, again.ratings_created) == (0, 0, 0)
    assert (Movie.objects.count(), DatasetRating.objects.count()) == (9_742, 100_836)
    assert Movie.objects.get(pk=40697).title == "Babylon 5"


@pytest.mark.django_db
def test_user_signup_hashes_the_password():
    user = user_signup(username="ada", password="a-long-passphrase")
    assert user.pk and user.check_password("a-long-passphrase") and user.password != "a-long-passphrase"
