"""The one MovieLens reader (pytorch_models/data/movielens.py), on the tiny releases of
tests/movie/fixtures that the importer's tests load too."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pytorch_models.data.movielens import (
    MovieLensFormatError,
    movie_tags,
    movies_read,
    release_detect,
    tag_normalise,
    tags_read,
    title_parse,
    users_read,
)
from pytorch_models.data.movielens_ratings import rating_pairs, ratings_chunks, ratings_read, ratings_start

FIXTURES = Path(__file__).resolve().parents[2] / "movie" / "fixtures"


@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", 1995),
        ("From Dusk Till Dawn 2: Texas Blood Money (1999) ", "From Dusk Till Dawn 2: Texas Blood Money",
         1999),
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
    assert release_detect(FIXTURES / "ml-10m-tiny").format == "dat"
    assert release_detect(FIXTURES / "ml-100k-tiny").format == "100k"
    assert release_detect(FIXTURES / "ml-1m-tiny").users.name == "users.dat"
    assert release_detect(FIXTURES / "ml-100k-tiny").users.name == "u.user"
    assert release_detect(FIXTURES / "ml-10m-tiny").users is None


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
    assert rows[0].rated_at == datetime.fromtimestamp(881250949, tz=UTC)
    assert len(list(ratings_read(release_detect(FIXTURES / "ml-1m-tiny")))) == 5


def test_rating_pairs_are_the_rows_ids_in_file_order():
    for folder in ("ml-latest-tiny", "ml-1m-tiny", "ml-100k-tiny"):
        release = release_detect(FIXTURES / folder)
        rows = [[r.dataset_user, r.movie_id] for r in ratings_read(release)]
        assert rating_pairs(release).tolist() == rows


def test_bad_rating_line_names_the_line(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,1\n1,x,4.0,1\n")
    with pytest.raises(MovieLensFormatError, match="line 2"):
        list(ratings_read(release_detect(tmp_path)))
    with pytest.raises(MovieLensFormatError, match="not a rating"):
        rating_pairs(release_detect(tmp_path))


def test_tags_are_normalised_and_counted_by_distinct_users(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n10,A (2000),Drama\n20,B (2001),Drama\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,10,4.0,1\n")
    (tmp_path / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,10,Dark  Comedy ,1\n2,10,dark comedy,2\n2,10,DARK COMEDY,3\n"
        "2,10,quirky,4\n3,20,,5\n3,20,Quirky,6\n"
    )
    rows = tags_read(release_detect(tmp_path))

    assert rows[0] == (1, 10, "dark comedy") and len(rows) == 5  # the blank tag is dropped
    assert movie_tags(rows) == {10: [("dark comedy", 2), ("quirky", 1)], 20: [("quirky", 1)]}
    assert tag_normalise("  Based on  a BOOK ") == "based on a book"
    assert tags_read(release_detect(FIXTURES / "ml-1m-tiny")) == []


def test_ml10m_is_utf8_with_half_stars_and_tags():
    release = release_detect(FIXTURES / "ml-10m-tiny")
    movies = {m.movie_id: m for m in movies_read(release)}
    assert movies[4973].title == "Amélie (Fabuleux destin d'Amélie Poulain, Le)" and movies[4973].year == 2001
    assert [(r.dataset_user, r.movie_id, r.rating) for r in ratings_read(release)] == [
        (15, 4973, 4.5), (15, 1, 3.0), (20, 1, 5.0), (20, 2, 0.5)]
    assert movie_tags(tags_read(release)) == {1: [("pixar", 2)], 4973: [("excellent!", 1)]}


def test_users_of_ml1m_map_occupation_codes_and_keep_age_groups():
    users = list(users_read(release_detect(FIXTURES / "ml-1m-tiny")))
    assert [(u.dataset_user, u.gender, u.age, u.occupation, u.zip_code) for u in users] == [
        (1, "F", 1, "K-12 student", "48067"), (2, "M", 56, "self-employed", "70072"),
        (3, "M", 25, "scientist", "55117")]


def test_users_of_ml100k_keep_ages_and_named_occupations():
    users = {u.dataset_user: u for u in users_read(release_detect(FIXTURES / "ml-100k-tiny"))}
    assert (users[196].age, users[196].gender, users[196].occupation, users[196].zip_code) == (
        49, "M", "writer", "55105")
    assert users[186].zip_code == "00000" and len(users) == 6


def test_releases_without_users_have_none_and_bad_users_are_named(tmp_path):
    assert list(users_read(release_detect(FIXTURES / "ml-latest-tiny"))) == []
    (tmp_path / "movies.dat").write_text("1::A (2000)::Drama\n")
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n")
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::X::1::10::48067\n")
    with pytest.raises(MovieLensFormatError, match="users.dat line 2 is not a user"):
        list(users_read(release_detect(tmp_path)))
    (tmp_path / "users.dat").write_text("1::F::1::21::48067\n")  # codes run 0-20
    with pytest.raises(MovieLensFormatError, match="line 1"):
        list(users_read(release_detect(tmp_path)))


@pytest.mark.parametrize("folder", ["ml-latest-tiny", "ml-1m-tiny", "ml-10m-tiny", "ml-100k-tiny"])
def test_chunks_of_any_size_cover_the_file_once(folder):
    """Chunks end at line ends, follow each other byte for byte, and read the same ratings
    whatever their size (1 byte: a line a chunk); a read started at a chunk's end with the rows
    before it reads the rest, numbered on."""
    release = release_detect(FIXTURES / folder)
    whole = [(r.dataset_user, r.movie_id, r.rating, r.rated_at) for r in ratings_read(release)]
    for size in (1, 7, 64, 1 << 20):
        chunks = list(ratings_chunks(release, chunk_bytes=size))
        assert chunks[0].start == ratings_start(release)
        assert chunks[-1].end == release.ratings.stat().st_size
        assert all(a.end == b.start and a.first_row + len(a) == b.first_row
                   for a, b in zip(chunks, chunks[1:], strict=False))
        rows = [(int(u), int(m), float(r), int(t)) for c in chunks
                for u, m, r, t in zip(c.users, c.movies, c.ratings, c.stamps, strict=True)]
        assert rows == [(u, m, r, int(at.timestamp())) for u, m, r, at in whole]
    middle = list(ratings_chunks(release, chunk_bytes=1))[2]
    rest = list(ratings_chunks(release, start=middle.start, first_row=middle.first_row))
    assert sum(map(len, rest)) == len(whole) - middle.first_row


def test_chunks_read_crlf_float_stamps_and_text_datetimes(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (tmp_path / "ratings.csv").write_bytes(b"userId,movieId,rating,timestamp\r\n1,1,4.5,789652009\r\n"
                                           b"\r\n2,1,0.5,1574327703.0")  # a blank line, no final line end
    [chunk] = ratings_chunks(release_detect(tmp_path))
    assert chunk.users.tolist() == [1, 2] and chunk.ratings.tolist() == [4.5, 0.5]
    assert chunk.rated_at_text().tolist() == ["1995-01-09 11:46:49", "2019-11-21 09:15:03"]


@pytest.mark.parametrize(
    ("line", "error"),
    [("1,1,5.5,1000", "line 2 is not a rating: a rating outside 0.5-5.0"),
     ("1,1,nan,1000", "line 2 is not a rating: a rating outside"),
     ("-1,1,4.0,1000", "line 2 is not a rating: a negative user id"),
     ("1,1,4.0", "line 2 is not a rating: \\['1', '1', '4.0'\\]"),
     ("1,1,4.0,-5", "line 2 is not a rating: a timestamp outside")],
)
def test_bad_values_name_their_line(tmp_path, line, error):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A (2000),Drama\n")
    (tmp_path / "ratings.csv").write_text(f"userId,movieId,rating,timestamp\n1,1,4.0,1\n{line}\n")
    with pytest.raises(MovieLensFormatError, match=error):
        list(ratings_chunks(release_detect(tmp_path)))


def test_dat_ratings_need_double_colons(tmp_path):
    (tmp_path / "movies.dat").write_text("1::A (2000)::Drama\n")
    (tmp_path / "ratings.dat").write_text("1::1::5::978300760\n2:1:5:978300760\n")
    with pytest.raises(MovieLensFormatError, match="ratings.dat line 2 is not a rating"):
        list(ratings_chunks(release_detect(tmp_path)))
