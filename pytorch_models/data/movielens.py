"""Reading the MovieLens releases: format detection and one parser per file format.

The one reader of these files: the site's importer (`movie.catalogue.services.movielens_import`) and
the training data (`pytorch_models.data.interactions.load_movielens`) both go through it, so a title
gets the same year and a movie the same genres on both sides. Supported folders:
- ml-latest-small / ml-latest / ml-25m / ml-32m: `movies.csv`, `ratings.csv`, optional
  `links.csv` and `tags.csv` (UTF-8);
- ml-1m and ml-10m: `movies.dat`, `ratings.dat`, optional `tags.dat` (ml-10m) and `users.dat`
  (ml-1m: demographics), `::`-separated (ml-1m is latin-1);
- ml-100k: `u.item` (`|`-separated, latin-1, 19 genre flags), `u.data` (tab-separated) and
  optional `u.user` (demographics).
The ratings file, the one that grows to millions of lines, is read in chunks by
`pytorch_models.data.movielens_ratings`.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
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
# ml-1m's users.dat gives occupations as codes; these are its README's names for them.
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)


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


@dataclass(frozen=True)
class UserRow:
    """A dataset user's demographics (ml-1m's users.dat, ml-100k's u.user): user features."""

    dataset_user: int
    gender: str  # "M" | "F"
    # ml-100k: the age in years; ml-1m: the lower bound of the user's age group
    # (1: under 18, 18: 18-24, 25, 35, 45, 50: 50-55, 56: 56 and over).
    age: int
    occupation: str  # the release's own names: ml-1m's codes are mapped through ML1M_OCCUPATIONS
    zip_code: str


@dataclass
class Release:
    """One MovieLens folder: which format it is and where its files are."""

    format: str  # "csv" | "dat" | "100k"
    movies: Path
    ratings: Path
    links: Path | None = None
    encoding: str = "utf-8"
    tags: Path | None = None
    users: Path | None = None  # users.dat (ml-1m), u.user (ml-100k): demographics

    def files(self) -> list[Path]:
        """Every file of the release this reader reads."""
        return [p for p in (self.movies, self.ratings, self.links, self.tags, self.users) if p is not None]


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
                       encoding=_dat_encoding(path / "movies.dat"), tags=_optional(path / "tags.dat"),
                       users=_optional(path / "users.dat"))
    if (path / "u.item").is_file() and (path / "u.data").is_file():
        return Release("100k", path / "u.item", path / "u.data", encoding="latin-1",
                       users=_optional(path / "u.user"))
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


def movies_read(release: Release) -> Iterator[MovieRow]:
    reader = {"csv": _movies_csv, "dat": _movies_dat, "100k": _movies_100k}[release.format]
    yield from reader(release)


def users_read(release: Release) -> Iterator[UserRow]:
    """The dataset users' demographics, for the releases that have them (ml-1m, ml-100k);
    nothing for the others. Raises MovieLensFormatError naming a bad line."""
    if release.users is None:
        return
    separator = "::" if release.format == "dat" else "|"
    with release.users.open(encoding="latin-1", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split(separator)
            try:
                yield _user_row(release.format, fields)
            except (ValueError, IndexError) as exc:
                raise MovieLensFormatError(
                    f"{release.users.name} line {number} is not a user: {fields!r}"
                ) from exc


def _user_row(format: str, fields: list[str]) -> UserRow:
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields, not 5")
    if format == "dat":  # UserID::Gender::Age::Occupation::Zip-code
        user, gender, age, occupation, zip_code = fields
        code = int(occupation)
        if not 0 <= code < len(ML1M_OCCUPATIONS):
            raise ValueError(f"occupation code {code}")
        occupation = ML1M_OCCUPATIONS[code]
    else:  # user id | age | gender | occupation | zip code
        user, age, gender, occupation, zip_code = fields
    if gender not in ("M", "F"):
        raise ValueError(f"gender {gender!r}")
    return UserRow(int(user), gender, int(age), occupation.strip(), zip_code.strip())


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
