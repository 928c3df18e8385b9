"""Reading the MovieLens releases: format detection and row parsing, no database.

Supported folders:
- ml-latest-small / ml-latest / ml-25m: `movies.csv`, `ratings.csv`, optional `links.csv` (UTF-8);
- ml-1m (and ml-10m): `movies.dat`, `ratings.dat`, `::`-separated (ml-1m is latin-1);
- ml-100k: `u.item` (`|`-separated, latin-1, 19 genre flags) and `u.data` (tab-separated).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

# The genres of ml-100k's `u.genre`, in the order of u.item's flag columns.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# Placeholders that mean "no genre", not a genre of their own.
NO_GENRE = {"(no genres listed)", "unknown", ""}

# "Heat (1995)", "Fawlty Towers (1975-1979)", "Death Note (2006–2007)", "Stranger Things (2016- )".
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?\s*)?\)$")


class MovieLensFormatError(ValueError):
    """The folder is missing or is not a MovieLens release this importer reads."""


@dataclass(frozen=True)
class MovieRow:
    movie_id: int
    title: str
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


def title_parse(raw: str) -> tuple[str, int | None]:
    """Split "Toy Story (1995) " into ("Toy Story", 1995); titles without a year keep None."""
    text = raw.strip()
    match = _TITLE_YEAR.match(text)
    if not match or not match.group("title"):
        return text, None
    return match.group("title"), int(match.group("year"))


def release_detect(path: Path) -> Release:
    """Find the files of the MovieLens release in `path`, or raise MovieLensFormatError."""
    if not path.is_dir():
        raise MovieLensFormatError(f"{path} is not a folder; pass the folder of an unpacked MovieLens release.")
    if (path / "movies.csv").is_file() and (path / "ratings.csv").is_file():
        links = path / "links.csv"
        return Release("csv", path / "movies.csv", path / "ratings.csv", links if links.is_file() else None)
    if (path / "movies.dat").is_file() and (path / "ratings.dat").is_file():
        return Release("dat", path / "movies.dat", path / "ratings.dat", encoding=_dat_encoding(path / "movies.dat"))
    if (path / "u.item").is_file() and (path / "u.data").is_file():
        return Release("100k", path / "u.item", path / "u.data", encoding="latin-1")
    raise MovieLensFormatError(
        f"{path} holds no MovieLens release: expected movies.csv + ratings.csv (ml-latest, ml-25m), "
        "movies.dat + ratings.dat (ml-1m) or u.item + u.data (ml-100k)."
    )


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
    opener = release.ratings.open(encoding=release.encoding, newline="")
    with opener as handle:
        if release.format == "csv":
            rows = csv.reader(handle)
            next(rows, None)  # header
        elif release.format == "dat":
            rows = (line.rstrip("\r\n").split("::") for line in handle if line.strip())
        else:
            rows = (line.split() for line in handle if line.strip())
        for number, row in enumerate(rows, start=1):
            try:
                user, movie, rating, stamp = row[:4]
                yield RatingRow(int(user), int(movie), float(rating), _from_timestamp(stamp))
            except (ValueError, IndexError) as exc:
                raise MovieLensFormatError(f"{release.ratings.name} line {number} is not a rating: {row!r}") from exc


def _from_timestamp(stamp: str) -> datetime:
    return datetime.fromtimestamp(int(float(stamp)), tz=timezone.utc)


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
            names = [name for name, flag in zip(ML100K_GENRES, flags) if flag == "1"]
            yield MovieRow(int(fields[0]), title, year, _genres(names))


def _release_year(text: str) -> int | None:
    try:
        return datetime.strptime(text.strip(), "%d-%b-%Y").year
    except ValueError:
        return None


__all__ = [
    "MovieLensFormatError", "MovieRow", "RatingRow", "Release", "count_lines",
    "movies_read", "ratings_read", "release_detect", "title_parse",
]
