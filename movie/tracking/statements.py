"""The click path's SQL: each read and the mirror's insert as one statement written once.

A click reads four rows (the movie, a row with its event id, a removal mark, an account's
forward) and inserts one. Through the ORM each cost the web process 0.35-0.6 ms of CPU, of
which sending the statement and reading the answer is 0.04 ms; building and compiling the
query every time is the rest (docs/benchmarks.md, "The click path's SQL and DynamoDB calls").
The statements here are the ones the ORM sends (same table, columns and conditions), each value
prepared by its field as the ORM prepares it (a UUID as MariaDB stores it, an aware datetime in
UTC), and a failure is Django's exception: the cursor wraps the driver's, so a duplicate key is
an `IntegrityError`. `movie.tracking.sessions` reads the session the same way.
"""

from __future__ import annotations

import functools

from django.db import connection, models

# Each call site names one statement: the click path has five, so the SQL text of at most
# STATEMENTS_KEPT (a few hundred bytes each) is kept.
STATEMENTS_KEPT = 32


def _fields(model: type[models.Model], names: tuple[str, ...]) -> list[models.Field]:
    return [model._meta.get_field(name) for name in names]  # a name or an attname (movie_id)


@functools.lru_cache(maxsize=STATEMENTS_KEPT)
def _select(model: type[models.Model], columns: tuple[str, ...], where: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    return (f"SELECT {', '.join(quote(f.column) for f in _fields(model, columns))} "
            f"FROM {quote(model._meta.db_table)} "
            f"WHERE {' AND '.join(f'{quote(f.column)} = %s' for f in _fields(model, where))} LIMIT 1")


@functools.lru_cache(maxsize=STATEMENTS_KEPT)
def _insert(model: type[models.Model], columns: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    return (f"INSERT INTO {quote(model._meta.db_table)} "
            f"({', '.join(quote(f.column) for f in _fields(model, columns))}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})")


def first(model: type[models.Model], columns: tuple[str, ...], **where) -> tuple | None:
    """`columns` of one row of `model` whose fields equal `where`, as the database returns them
    (no conversion: ids, strings, numbers); None when there is none."""
    params = [f.get_db_prep_value(v, connection, prepared=False)
              for f, v in zip(_fields(model, tuple(where)), where.values(), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_select(model, columns, tuple(where)), params)
        return cursor.fetchone()


def insert(model: type[models.Model], **values) -> None:
    """Insert one row of `model` (every column it needs named in `values`; the id is the
    database's)."""
    params = [f.get_db_prep_save(v, connection)
              for f, v in zip(_fields(model, tuple(values)), values.values(), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_insert(model, tuple(values)), params)
