"""The ratings file of a MovieLens release, read in chunks of bytes: one parser for the three
layouts (`userId,movieId,rating,timestamp` with a header; `::`-separated `.dat`; ml-100k's
tab-separated `u.data`), used by the site's importer (a transaction per chunk, resumable at a
chunk's byte offset) and by the training data (`rating_pairs`).

Each chunk is parsed in C by pandas; a chunk pandas rejects is parsed again line by line in
Python, which names the first bad line (or reads what pandas could not, e.g. a float timestamp).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from pytorch_models.data.movielens import MovieLensFormatError, RatingRow, Release

# Bytes of the ratings file per chunk: 4 MiB is ~150k ratings of ml-25m (27 bytes a line),
# inside the 50k-200k ratings a transaction of the importer should hold (one commit per chunk).
CHUNK_BYTES = 4 << 20
# Field separator, whether the file starts with a header row, and which fields of a line are the
# four values. `::` is read as `:` by pandas' C parser (fields 0, 2, 4, 6; the others are empty),
# its Python parser being ~10x slower.
_LAYOUT = {"csv": (",", True, (0, 1, 2, 3)), "dat": (":", False, (0, 2, 4, 6)),
           "100k": ("\t", False, (0, 1, 2, 3))}
_SEPARATOR = {"csv": ",", "dat": "::", "100k": "\t"}
RATING_MIN, RATING_MAX = 0.5, 5.0  # half stars (ml-100k and ml-1m: whole stars 1-5)
STAMP_MAX = 253_402_300_800  # 10000-01-01: a datetime's years have four digits


@dataclass(frozen=True)
class RatingsChunk:
    """The ratings in bytes [start, end) of the file, each array (n,) in file order."""

    users: np.ndarray  # int64 userId
    movies: np.ndarray  # int64 movieId
    ratings: np.ndarray  # float64 stars
    stamps: np.ndarray  # int64 seconds since 1970-01-01 UTC
    first_row: int  # ratings of the file before this chunk: its first is rating first_row + 1
    start: int
    end: int

    def __len__(self) -> int:
        return len(self.users)

    def rated_at_text(self) -> np.ndarray:
        """(n,) str "YYYY-MM-DD HH:MM:SS" (UTC) of each rating, as databases take a datetime."""
        text = np.datetime_as_string(self.stamps.astype("datetime64[s]"), unit="s")  # ...DDTHH...
        if len(text):
            text.view(np.uint32).reshape(len(text), -1)[:, 10] = ord(" ")  # (n, 19) UCS-4 code points
        return text


def ratings_start(release: Release) -> int:
    """Byte offset of the first rating: after the header line, where the format has one."""
    if not _LAYOUT[release.format][1]:
        return 0
    with release.ratings.open("rb") as handle:
        handle.readline()
        return handle.tell()


def ratings_chunks(release: Release, *, start: int | None = None, first_row: int = 0,
                   chunk_bytes: int = CHUNK_BYTES) -> Iterator[RatingsChunk]:
    """The ratings from byte `start` (a line's start; default the first rating) to the end, in
    chunks of about `chunk_bytes` ending at a line end. `first_row`: ratings before `start`, so
    an error names the right line. Raises MovieLensFormatError naming the first bad line."""
    offset = ratings_start(release) if start is None else start
    with release.ratings.open("rb") as handle:
        handle.seek(offset)
        carry = b""
        while True:
            block = handle.read(chunk_bytes)
            data = carry + block
            if not data:
                return
            at_end = len(block) < chunk_bytes  # a short read of a file: its end
            cut = len(data) if at_end else data.rfind(b"\n") + 1
            if cut == 0:  # no line end yet: a line longer than chunk_bytes
                carry = data
                continue
            body, carry = data[:cut], data[cut:]
            if body.strip():
                chunk = _chunk_parse(release, body, first_row, offset)
                first_row += len(chunk)
                yield chunk
            offset += len(body)
            if at_end:
                return


def ratings_read(release: Release) -> Iterator[RatingRow]:
    """Every rating as a row, streamed."""
    for chunk in ratings_chunks(release):
        for user, movie, rating, stamp in zip(chunk.users.tolist(), chunk.movies.tolist(),
                                              chunk.ratings.tolist(), chunk.stamps.tolist(), strict=True):
            yield RatingRow(user, movie, rating, datetime.fromtimestamp(stamp, tz=UTC))


def rating_pairs(release: Release) -> np.ndarray:
    """(E, 2) int64 [user id, movie id] of every rating, in file order: the training data."""
    pairs = [np.column_stack([chunk.users, chunk.movies]) for chunk in ratings_chunks(release)]
    return np.concatenate(pairs) if pairs else np.empty((0, 2), dtype=np.int64)


def _chunk_parse(release: Release, body: bytes, first_row: int, start: int) -> RatingsChunk:
    separator, _, fields = _LAYOUT[release.format]
    try:
        frame = pd.read_csv(io.BytesIO(body), sep=separator, header=None, usecols=list(fields),
                            dtype={fields[0]: np.int64, fields[1]: np.int64, fields[2]: np.float64,
                                   fields[3]: np.int64}, engine="c", na_filter=False)
        columns = [frame[field].to_numpy() for field in fields]
    except (ValueError, IndexError, pd.errors.ParserError):
        columns = _lines_parse(release, body, first_row)
    chunk = RatingsChunk(*columns, first_row=first_row, start=start, end=start + len(body))
    _chunk_check(release, chunk)
    return chunk


def _lines_parse(release: Release, body: bytes, first_row: int) -> list[np.ndarray]:
    """What pandas rejected, line by line: the values, or an error naming the first bad line."""
    separator = _SEPARATOR[release.format]
    rows = []
    lines = (line for line in body.decode(release.encoding).splitlines() if line.strip())
    for number, line in enumerate(lines, start=first_row + 1):
        row = line.split(separator)
        try:
            user, movie, rating, stamp = row[:4]
            rows.append((int(user), int(movie), float(rating), int(float(stamp))))
        except (ValueError, IndexError, OverflowError) as exc:
            raise MovieLensFormatError(
                f"{release.ratings.name} line {number} is not a rating: {row!r}"
            ) from exc
    users, movies, ratings, stamps = zip(*rows, strict=True)
    return [np.array(users, dtype=np.int64), np.array(movies, dtype=np.int64),
            np.array(ratings, dtype=np.float64), np.array(stamps, dtype=np.int64)]


def _chunk_check(release: Release, chunk: RatingsChunk) -> None:
    problems = [
        (chunk.users < 0, "a negative user id"),
        (chunk.movies < 0, "a negative movie id"),
        (~((chunk.ratings >= RATING_MIN) & (chunk.ratings <= RATING_MAX)),
         f"a rating outside {RATING_MIN}-{RATING_MAX}"),
        ((chunk.stamps < 0) | (chunk.stamps >= STAMP_MAX), "a timestamp outside 1970-9999"),
    ]
    for bad, what in problems:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            values = (chunk.users[row], chunk.movies[row], chunk.ratings[row], chunk.stamps[row])
            raise MovieLensFormatError(f"{release.ratings.name} line {chunk.first_row + row + 1} is not a "
                                       f"rating: {what} in {tuple(v.item() for v in values)}")
