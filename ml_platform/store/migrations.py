"""The metadata database's one kind of migration: a column added to a table after a home's
database was made is added in place (nullable), when the database is opened.

`MetaData.create_all` makes the tables a database lacks but never changes one it has, so a
home made before a column existed would fail on its first read of it. Rows written before
hold NULL there: readers treat NULL as "not recorded".
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


def add_missing_columns(engine: Engine, metadata: sa.MetaData) -> list[str]:
    """Add every declared column the database's tables lack; returns `table.column` names."""
    added = []
    for table in metadata.sorted_tables:
        for column in _missing(engine, table):
            _add_column(engine, table, column)
            added.append(f"{table.name}.{column.name}")
    if added:
        log.info("metadata database %s: added columns %s", engine.url.database, added)
    return added


def _missing(engine: Engine, table: sa.Table) -> list[sa.Column[object]]:
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    return [c for c in table.columns if c.name not in present]


def _add_column(engine: Engine, table: sa.Table, column: sa.Column[object]) -> None:
    if not column.nullable:
        raise RuntimeError(
            f"column {table.name}.{column.name} is missing from the metadata database and is "
            "NOT NULL: declare a column added to an existing table as nullable"
        )
    kind = column.type.compile(dialect=engine.dialect)
    preparer = engine.dialect.identifier_preparer
    sql = (f"ALTER TABLE {preparer.format_table(table)} "
           f"ADD COLUMN {preparer.format_column(column)} {kind}")  # fmt: skip
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)
    except sa.exc.DBAPIError:
        if column.name in {c.name for c in _missing(engine, table)}:
            raise
        # another process opening the same database added it first: the same outcome
