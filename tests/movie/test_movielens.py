from datetime import datetime, timezone

import pytest

from movie.movielens import MovieLensFormatError, movies_read, ratings_read, release_detect, title_parse

from .conftest import FIXTURES


@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", 1995),
        ("From Dusk Till Dawn 2: Texas Blood Money (1999) ", "From Dusk Till Dawn 2: Texas Blood Money", 1999),
        ("Babylon 5", "Babylon 5", None),
        ("Ready Player One", "Ready Player One", None),
        ("American President, The (1995)", "American President, The", 1995),
        ("Assembly (Ji jie hao) (2007) ", "Assembly (Ji jie hao)", 2007),
        ("Death Note: Desu nôto (2006–2007)", "Death Note: Desu nôto", 2006),
        ("Fawlty Towers (1975-1979)", "Fawlty Towers", 1975),
        ("Stranger Things (2016- )", "Stranger Things", 2016),
        ("1984 (1956)", "1984", 1956),
        ("2001: A Space Odyssey (1968)", "2001: A Space Odyssey", 1968),
        ("(500) Days of Summer (2009)", "(500) Days of Summer", 2009),
        ("  Hyena Road  ", "Hyena Road", None),
    ],
)
def test_title_parse(raw, title, year):
    assert title_parse(raw) == (title, year)


def test_detect_formats():
    assert release_detect(FIXTURES / "ml-latest-tiny").format == "csv"
    assert release_detect(FIXTURES / "ml-1m-tiny").format == "dat"
    assert release_detect(FIXTURES / "ml-100k-tiny").format == "100k"


def test_detect_rejects_missing_and_unknown_folders(tmp_path):
    with pytest.raises(MovieLensFormatError, match="is not a folder"):
        release_detect(tmp_path / "nope")
    with pytest.raises(MovieLensFormatError, match="holds no MovieLens release"):
        release_detect(FIXTURES / "not-movielens")


def test_csv_movies_join_links_and_drop_placeholder_genres():
    movies = {m.movie_id: m for m in movies_read(release_detect(FIXTURES / "ml-latest-tiny"))}
    assert movies[1].imdb_id == "0114709" and movies[1].tmdb_id == 862
    assert movies[27008].tmdb_id is None
    assert movies[11].title == "American President, The"
    assert movies[171749].genres == ()
    assert movies[40697].year is None


def test_dat_movies_are_latin1():
    movies = {m.movie_id: m for m in movies_read(release_detect(FIXTURES / "ml-1m-tiny"))}
    assert movies[3842].title == "Café au Lait"
    assert movies[1].genres == ("Animation", "Children's", "Comedy")


def test_100k_movies_use_genre_flags_and_release_date():
    movies = {m.movie_id: m for m in movies_read(release_detect(FIXTURES / "ml-100k-tiny"))}
    assert movies[1].genres == ("Animation", "Children", "Comedy")
    assert movies[2].genres == ("Action", "Adventure", "Thriller")
    assert movies[267].genres == () and movies[267].year is None
    assert (movies[1300].title, movies[1300].year) == ("'Til There Was You", 1997)
    assert movies[1645].title == "Señorita Extraviada"


def test_ratings_rows():
    rows = list(ratings_read(release_detect(FIXTURES / "ml-100k-tiny")))
    assert rows[0].dataset_user == 196 and rows[0].movie_id == 1 and rows[0].rating == 3.0
    assert rows[0].rated_at == datetime.fromtimestamp(881250949, tz=timezone.utc)
    assert len(list(ratings_read(release_detect(FIXTURES / "ml-1m-tiny")))) == 5


def test_bad_rating_line_names_the_line(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,x,4.0,1\n")
    with pytest.raises(MovieLensFormatError, match="line 2"):
        list(ratings_read(release_detect(tmp_path)))
