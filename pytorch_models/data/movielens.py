"""Reading the MovieLens releases: format detection and one parser per file format.

The one reader of these files: the site's importer (`movie.catalogue.services.movielens_import`) and
the training data (`pytorch_models.data.interactions.load_movielens`) both go through it, so a title
gets the same year and a movie the same genres on both sides. Supported folders:
- ml-latest-small / ml-latest / ml-25m: `movies.csv`, `ratings.csv`, optional `links.csv`
  and `tags.csv` (UTF-8);
- ml-1m (and ml-10m): `movies.dat`, `ratings.dat`, optional `tags.dat`, `::`-separated
  (ml-1m is latin-1);
- ml-100k: `u.item` (`|`-separated, latin-1, 19 genre flags) and `u.data` (tab-separated).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

# The genres of ml-100k's `u.genre`, in the order of u.item's flag columns.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# Placeholders that mean "no genre", not a genre of their own.
NO_GENRE = {"(no genres listed)", "unknown", ""}

# "Heat (1995)", "Fawlty Towers (1975-1979)", "Death Note (2006–2007)", and a series still
# running, "Stranger Things (2016- )": the year it started, 2016.
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?\s*)?\)$")
# How each format separates the fields of its ratings file, and whether it has a header row.
_RATINGS_LAYOUT = {"csv": (",", True), "dat": ("::", False), "100k": ("\t", False)}


class MovieLensFormatError(ValueError):
    """The folder is missing or is not a MovieLens release this reader knows."""


@dataclass(frozen=True)
class MovieRow:
    movie_id: int
    title: str  # without the year: "Heat"
    year: int | None
    genres: tuple[str, ...]
    imdb_id: str = ""
    tmdb_id: int | None = None


@dataclass(frozen=True)
class RatingRow:
    dataset_user: int
    movie_id: int
    rating: float
    rated_at: datetime


@dataclass
class Release:
    """One MovieLens folder: which format it is and where its files are."""

    format: str  # "csv" | "dat" | "100k"
    movies: Path
    ratings: Path
    links: Path | None = None
    encoding: str = "utf-8"
    tags: Path | None = None


def title_parse(raw: str) -> tuple[str, int | None]:
    """Split "Toy Story (1995) " into ("Toy Story", 1995); titles without a year keep None."""
    text = raw.strip()
    match = _TITLE_YEAR.match(text)
    if not match or not match.group("title"):
        return text, None
    return match.group("title"), int(match.group("year"))


def release_detect(path: Path | str) -> Release:
    """Find the files of the MovieLens release in `path`, or raise MovieLensFormatError."""
    path = Path(path)
    if not path.is_dir():
        raise MovieLensFormatError(
            f"{path} is not a folder; pass the folder of an unpacked MovieLens release."
        )
    if (path / "movies.csv").is_file() and (path / "ratings.csv").is_file():
        return Release("csv", path / "movies.csv", path / "ratings.csv", _optional(path / "links.csv"),
                       tags=_optional(path / "tags.csv"))
    if (path / "movies.dat").is_file() and (path / "ratings.dat").is_file():
        return Release("dat", path / "movies.dat", path / "ratings.dat",
                       encoding=_dat_encoding(path / "movies.dat"), tags=_optional(path / "tags.dat"))
    if (path / "u.item").is_file() and (path / "u.data").is_file():
        return Release("100k", path / "u.item", path / "u.data", encoding="latin-1")
    raise MovieLensFormatError(
        f"{path} holds no MovieLens release: expected movies.csv + ratings.csv (ml-latest, ml-25m), "
        "movies.dat + ratings.dat (ml-1m) or u.item + u.data (ml-100k)."
    )


def _optional(path: Path) -> Path | None:
    return path if path.is_file() else None


def _dat_encoding(movies: Path) -> str:
    # ml-1m is latin-1; ml-10m is UTF-8. Latin-1 decodes anything, so try UTF-8 first.
    try:
        movies.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def movies_read(release: Release) -> Iterator[MovieRow]:
    reader = {"csv": _movies_csv, "dat": _movies_dat, "100k": _movies_100k}[release.format]
    yield from reader(release)


def ratings_read(release: Release) -> Iterator[RatingRow]:
    """Every rating as a row, streamed (the importer writes them in batches)."""
    separator, header = _RATINGS_LAYOUT[release.format]
    with release.ratings.open(encoding=release.encoding, newline="") as handle:
        lines = (line for line in handle if line.strip())
        if header:
            next(lines, None)
        for number, line in enumerate(lines, start=1):
            row = line.rstrip("\r\n").split(separator)
            try:
                user, movie, rating, stamp = row[:4]
                yield RatingRow(int(user), int(movie), float(rating), _from_timestamp(stamp))
            except (ValueError, IndexError) as exc:
                raise MovieLensFormatError(
                    f"{release.ratings.name} line {number} is not a rating: {row!r}"
                ) from exc


def rating_pairs(release: Release) -> np.ndarray:
    """(E, 2) int64 [user id, movie id] of every rating, in file order: the training data.
    Read in C by pandas, ~10x faster than `ratings_read` on ml-25m's 25M lines."""
    separator, header = _RATINGS_LAYOUT[release.format]
    try:
        frame = pd.read_csv(release.ratings, sep=separator, header=0 if header else None, usecols=[0, 1],
                            dtype=np.int64, engine="python" if len(separator) > 1 else "c")
    except ValueError as exc:
        raise MovieLensFormatError(
            f"{release.ratings.name} holds a line that is not a rating: {exc}"
        ) from exc
    return frame.to_numpy()


def _from_timestamp(stamp: str) -> datetime:
    return datetime.fromtimestamp(int(float(stamp)), tz=UTC)


def _genres(names) -> tuple[str, ...]:
    return tuple(name.strip() for name in names if name.strip() not in NO_GENRE)


def _movies_csv(release: Release) -> Iterator[MovieRow]:
    links = _links_read(release.links) if release.links else {}
    with release.movies.open(encoding=release.encoding, newline="") as handle:
        rows = csv.reader(handle)
        next(rows, None)
        for row in rows:
            if not row:
                continue
            movie_id = int(row[0])
            title, year = title_parse(row[1])
            imdb_id, tmdb_id = links.get(movie_id, ("", None))
            yield MovieRow(movie_id, title, year, _genres(row[2].split("|")), imdb_id, tmdb_id)


def _links_read(path: Path) -> dict[int, tuple[str, int | None]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        next(rows, None)
        return {
            int(row[0]): (row[1].strip(), int(row[2]) if row[2].strip() else None)
            for row in rows
            if row
        }


def _movies_dat(release: Release) -> Iterator[MovieRow]:
    with release.movies.open(encoding=release.encoding, newline="") as handle:
        for line in handle:
            if not line.strip():
                continue
            movie_id, raw_title, genres = line.rstrip("\r\n").split("::")
            title, year = title_parse(raw_title)
            yield MovieRow(int(movie_id), title, year, _genres(genres.split("|")))


def _movies_100k(release: Release) -> Iterator[MovieRow]:
    with release.movies.open(encoding=release.encoding, newline="") as handle:
        for line in handle:
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("|")
            title, year = title_parse(fields[1])
            if year is None and fields[2]:
                year = _release_year(fields[2])
            flags = fields[5 : 5 + len(ML100K_GENRES)]
            names = [name for name, flag in zip(ML100K_GENRES, flags, strict=True) if flag == "1"]
            yield MovieRow(int(fields[0]), title, year, _genres(names))


def _release_year(text: str) -> int | None:
    try:
        return datetime.strptime(text.strip(), "%d-%b-%Y").year
    except ValueError:
        return None


def tag_normalise(text: str) -> str:
    """How tags are compared: lower case, no outer spaces, inner runs of spaces as one."""
    return " ".join(str(text).lower().split())


def tags_read(release: Release) -> list[tuple[int, int, str]]:
    """(userId, movieId, normalised tag) of tags.csv (ml-latest, ml-25m) or tags.dat (ml-10m);
    empty when the release has no tags (ml-1m, ml-100k). Blank tags are dropped."""
    if release.tags is None:
        return []
    if release.format == "csv":
        frame = pd.read_csv(release.tags, usecols=["userId", "movieId", "tag"],
                            dtype={"userId": np.int64, "movieId": np.int64, "tag": str},
                            keep_default_na=False)
    else:
        frame = pd.read_csv(release.tags, sep="::", engine="python", header=None, usecols=[0, 1, 2],
                            names=["userId", "movieId", "tag"], dtype={"tag": str}, keep_default_na=False,
                            encoding="utf-8", quoting=3)
    rows = ((int(u), int(m), tag_normalise(t)) for u, m, t in frame.itertuples(index=False))
    return [row for row in rows if row[2]]


def movie_tags(rows: Sequence[tuple[int, int, str]]) -> dict[int, list[tuple[str, int]]]:
    """movieId -> [(tag, how many distinct users applied it)], most applied first, then by name."""
    users: dict[tuple[int, str], set[int]] = {}
    for user, movie, tag in rows:
        users.setdefault((movie, tag), set()).add(user)
    tags: dict[int, list[tuple[str, int]]] = {}
    for (movie, tag), who in users.items():
        tags.setdefault(movie, []).append((tag, len(who)))
    return {movie: sorted(pairs, key=lambda p: (-p[1], p[0])) for movie, pairs in tags.items()}
