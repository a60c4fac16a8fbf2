"""The platform's metadata database (SQLAlchemy): what Dagster does not know.

Which image went into which batch (an image id is the primary key, so it enters at most one
batch whatever planners race), each image's pet and collection labels (the index that keeps
clustering and retrain planning proportional to the new work), download attempts with backoff
and quarantine, claims that serialize runs of one partition, the shared feed cursor, and the
labels people accepted from zero-shot suggestions (`accepted_labels`, see
`store.accepted_labels`: platform-made labels, never crawlr membership) and the alerts last
sent per failing check (`alert_log`, see `store.alert_log`).
sqlite under home by default; PostgreSQL (the server Dagster and MLflow share) by one URL.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ml_platform.domain import AttemptStatus, ImageRecord
from ml_platform.store.migrations import add_missing_columns

meta = sa.MetaData()
batches = sa.Table(
    "batches",
    meta,
    sa.Column("batch_key", sa.String(200), primary_key=True),
    sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("n_images", sa.Integer, nullable=False),
)
images = sa.Table(
    "images",
    meta,
    sa.Column("image_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("batch_key", sa.String(200), nullable=False, index=True),
    sa.Column("pet_id", sa.BigInteger, nullable=True, index=True),
)
labels = sa.Table(
    "image_labels",
    meta,
    sa.Column("image_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("collection_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("rejected", sa.Boolean, nullable=False),
    sa.Index("ix_image_labels_collection", "collection_id"),
)
attempts = sa.Table(
    "attempts",
    meta,
    sa.Column("image_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("stage", sa.String(40), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
)
claims = sa.Table(
    "claims",
    meta,
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
# Every change the label tick applied to `image_labels` (store.label_index): before -> after
# is "member" | "rejected" | "none"; `source` says where it was read and `source_ref` which
# page (the labels.json `since` cursor, the rescan's feed cursor, the snapshot digest).
label_history = sa.Table(
    "label_history",
    meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("image_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("collection_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("before", sa.String(10), nullable=False),
    sa.Column("after", sa.String(10), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),  # crawlr's time
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("source_ref", sa.Text, nullable=False),
)
# The newest crawlr `updated_at` applied per image: an older row (a replayed page) is ignored.
label_updates = sa.Table(
    "label_updates",
    meta,
    sa.Column("image_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
cursors = sa.Table(
    "cursors",
    meta,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Labels accepted on the platform from zero-shot suggestions (`ml-platform labels accept`):
# crawlr stays the source of truth for membership; every row names its source and model.
accepted_labels = sa.Table(
    "accepted_labels",
    meta,
    sa.Column("dataset", sa.String(200), primary_key=True),
    sa.Column("image_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("label", sa.String(300), nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("model", sa.String(300), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
    # pretrained | random: the suggesting model's weights (NULL: accepted before it was kept)
    sa.Column("weights", sa.String(20), nullable=True),
)

# What was last sent per alerting subject (`store.alert_log`): a failing check alerts once,
# repeats after a quiet period or a rise in severity, and its row goes when it passes again.
alert_log = sa.Table(
    "alert_log",
    meta,
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("subject", sa.String(300), primary_key=True),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("first_sent", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_sent", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
)


class BatchConflictError(RuntimeError):
    """Some images of a batch were assigned to another batch first (a concurrent planner)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """sqlite returns naive datetimes; everything stored is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def make_engine(url: str) -> Engine:
    """An engine for `url`; sqlite gets a busy timeout so concurrent processes queue."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # writers serialize at the start

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return sa.create_engine(url, pool_pre_ping=True)


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class MetadataDB:
    """Narrow methods over the metadata tables; every write is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url)
        meta.create_all(self.engine)
        add_missing_columns(self.engine, meta)  # columns added since the database was made

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """One transaction for a caller that writes several tables at once (store modules)."""
        return self._tx()

    # -- batches ---------------------------------------------------------------------------
    def unassigned(self, image_ids: Iterable[int]) -> set[int]:
        ids = sorted(set(image_ids))
        known: set[int] = set()
        with self._tx() as conn:
            for chunk in _chunks(ids, 900):
                query = sa.select(images.c.image_id).where(images.c.image_id.in_(chunk))
                known.update(int(row[0]) for row in conn.execute(query))
        return set(ids) - known

    def register_batch(self, batch_key: str, records: Sequence[ImageRecord]) -> None:
        """Assign the images to the batch with their labels, in one transaction.

        Raises BatchConflictError, changing nothing, when another planner assigned one of the
        images first; registering the same batch again is a no-op.
        """
        ids = [r.id for r in records]
        if len(set(ids)) != len(ids):
            raise ValueError(f"batch {batch_key} lists an image id twice; plan deduplicates ids")
        try:
            self._insert_batch(batch_key, records, ids)
        except sa.exc.IntegrityError as exc:  # a concurrent planner committed between our reads
            if batch_key in self.batch_keys():
                return  # it registered this very batch: the same outcome
            raise BatchConflictError(
                f"batch {batch_key}: some images were assigned to another batch concurrently; "
                "plan again from the same cursor"
            ) from exc

    def _insert_batch(self, batch_key: str, records: Sequence[ImageRecord], ids: list[int]) -> None:
        with self._tx() as conn:
            if conn.execute(
                sa.select(batches.c.batch_key).where(batches.c.batch_key == batch_key)
            ).first():
                return
            taken = self._assigned(conn, ids)
            if taken:
                raise BatchConflictError(
                    f"batch {batch_key}: images {sorted(taken)[:10]} are already in another batch "
                    "(a concurrent planner); plan again from the same cursor"
                )
            conn.execute(
                batches.insert(),
                [{"batch_key": batch_key, "registered_at": utcnow(), "n_images": len(ids)}],
            )
            if records:
                conn.execute(
                    images.insert(),
                    [
                        {"image_id": r.id, "batch_key": batch_key, "pet_id": r.pet_id}
                        for r in records
                    ],
                )
            rows = _label_rows(records)
            if rows:
                conn.execute(labels.insert(), rows)

    def _assigned(self, conn: Connection, ids: list[int]) -> set[int]:
        out: set[int] = set()
        for chunk in _chunks(ids, 900):
            query = sa.select(images.c.image_id).where(images.c.image_id.in_(chunk))
            out.update(int(row[0]) for row in conn.execute(query))
        return out

    def batch_keys(self) -> list[str]:
        """Every registered batch, oldest first."""
        query = sa.select(batches.c.batch_key).order_by(
            batches.c.registered_at, batches.c.batch_key
        )
        with self._tx() as conn:
            return [str(row[0]) for row in conn.execute(query)]

    def batch_of(self, image_id: int) -> str | None:
        query = sa.select(images.c.batch_key).where(images.c.image_id == image_id)
        with self._tx() as conn:
            row = conn.execute(query).first()
        return None if row is None else str(row[0])

    def image_count(self) -> int:
        with self._tx() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(images)).scalar_one())

    def batches_of_pets(self, pet_ids: Iterable[int]) -> list[str]:
        """The batches holding any image of these pets: what a re-cluster must read."""
        pets = sorted(set(pet_ids))
        keys: set[str] = set()
        with self._tx() as conn:
            for chunk in _chunks(pets, 900):
                query = sa.select(images.c.batch_key).where(images.c.pet_id.in_(chunk)).distinct()
                keys.update(str(row[0]) for row in conn.execute(query))
        return sorted(keys)

    def batches_of_collections(self, collection_ids: Iterable[int]) -> list[str]:
        """The batches holding any image labelled (member or rejected) for these collections."""
        cids = sorted(set(collection_ids))
        keys: set[str] = set()
        with self._tx() as conn:
            for chunk in _chunks(cids, 900):
                query = (
                    sa.select(images.c.batch_key)
                    .join(labels, labels.c.image_id == images.c.image_id)
                    .where(labels.c.collection_id.in_(chunk))
                    .distinct()
                )
                keys.update(str(row[0]) for row in conn.execute(query))
        return sorted(keys)

    def label_fingerprints(
        self, collection_ids: Sequence[int] | None = None
    ) -> dict[int, tuple[int, int, int]]:
        """Per collection (members, rejections, id checksum): changes when its labels change.

        One grouped query over the label index: retrain planning never re-reads the tables.
        """
        members = sa.func.sum(sa.case((labels.c.rejected.is_(False), 1), else_=0))
        checksum = sa.func.sum(
            (labels.c.image_id * 2654435761 + sa.cast(labels.c.rejected, sa.Integer)) % 4294967291
        )
        query = sa.select(labels.c.collection_id, members, sa.func.count(), checksum).group_by(
            labels.c.collection_id
        )
        if collection_ids is not None:
            query = query.where(labels.c.collection_id.in_(list(collection_ids)))
        with self._tx() as conn:
            return {
                int(cid): (int(m or 0), int(n) - int(m or 0), int(s or 0))
                for cid, m, n, s in conn.execute(query)
            }

    def current_labels(self, image_ids: Iterable[int]) -> dict[int, tuple[list[int], list[int]]]:
        """(member collections, rejected collections) from the label index for each of
        `image_ids` the index holds (registered in a batch); other ids are left out."""
        ids = sorted(set(image_ids))
        out: dict[int, tuple[list[int], list[int]]] = {}
        with self._tx() as conn:
            for chunk in _chunks(ids, 900):
                known = sa.select(images.c.image_id).where(images.c.image_id.in_(chunk))
                out.update({int(row[0]): ([], []) for row in conn.execute(known)})
                query = sa.select(labels).where(labels.c.image_id.in_(chunk))
                for image_id, cid, rejected in conn.execute(query):
                    out.setdefault(int(image_id), ([], []))[1 if rejected else 0].append(int(cid))
        return out

    # -- attempts ----------------------------------------------------------------------------
    def record_outcomes(
        self,
        stage: str,
        ok: Iterable[int],
        failed: dict[int, tuple[str, bool]],
        *,
        max_attempts: int,
        backoff_s: float,
    ) -> None:
        """Record a stage's outcome per image: ok ids, and failures as (reason, retryable).

        A retryable failure is retried after backoff_s * 2**(attempts-1) until max_attempts,
        then quarantined; a permanent one (not an image, too large) is failed at once.
        """
        now = utcnow()
        with self._tx() as conn:
            previous = self._attempt_rows(conn, stage, [*ok, *failed])
            for image_id in ok:
                self._upsert_attempt(
                    conn,
                    stage,
                    image_id,
                    AttemptStatus.OK,
                    previous.get(image_id, 0) + 1,
                    None,
                    None,
                )
            for image_id, (reason, retryable) in failed.items():
                n = previous.get(image_id, 0) + 1
                if retryable and n < max_attempts:
                    status, due = (
                        AttemptStatus.RETRY,
                        now + timedelta(seconds=backoff_s * 2 ** (n - 1)),
                    )
                elif retryable:
                    status, due = AttemptStatus.QUARANTINED, None
                else:
                    status, due = AttemptStatus.FAILED, None
                self._upsert_attempt(conn, stage, image_id, status, n, reason, due)

    def _attempt_rows(self, conn: Connection, stage: str, ids: list[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for chunk in _chunks(sorted(set(ids)), 900):
            query = sa.select(attempts.c.image_id, attempts.c.attempts).where(
                attempts.c.stage == stage, attempts.c.image_id.in_(chunk)
            )
            out.update({int(i): int(n) for i, n in conn.execute(query)})
        return out

    def _upsert_attempt(
        self, conn: Connection, stage: str, image_id: int, status: AttemptStatus, n: int,
        reason: str | None, due: datetime | None,
    ) -> None:  # fmt: skip
        values = {"status": status.value, "attempts": n, "reason": reason, "next_attempt_at": due}
        key = (attempts.c.image_id == image_id) & (attempts.c.stage == stage)
        if conn.execute(attempts.update().where(key).values(**values)).rowcount == 0:
            conn.execute(attempts.insert().values(image_id=image_id, stage=stage, **values))

    def due_retries(self, stage: str, now: datetime | None = None) -> dict[str, list[int]]:
        """Batches with images whose retry is due now, with those image ids."""
        now = now or utcnow()
        query = (
            sa.select(images.c.batch_key, attempts.c.image_id, attempts.c.next_attempt_at)
            .join(images, images.c.image_id == attempts.c.image_id)
            .where(attempts.c.stage == stage, attempts.c.status == AttemptStatus.RETRY.value)
        )
        out: dict[str, list[int]] = {}
        with self._tx() as conn:
            for key, image_id, due in conn.execute(query):
                aware = _aware(due)
                if aware is None or aware <= now:
                    out.setdefault(str(key), []).append(int(image_id))
        return out

    def attempt_rows(self) -> list[dict[str, Any]]:
        """Every non-ok attempt row: image_id, stage, status, attempts, reason."""
        query = (
            sa.select(attempts)
            .where(attempts.c.status != AttemptStatus.OK.value)
            .order_by(attempts.c.image_id)
        )
        with self._tx() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def attempt_status(self, stage: str, image_id: int) -> AttemptStatus | None:
        key = (attempts.c.image_id == image_id) & (attempts.c.stage == stage)
        with self._tx() as conn:
            row = conn.execute(sa.select(attempts.c.status).where(key)).first()
        return None if row is None else AttemptStatus(row[0])

    def settled(self, stage: str, image_ids: Sequence[int]) -> set[int]:
        """Images whose failure in `stage` is final for now: permanent, or quarantined."""
        final = [AttemptStatus.FAILED.value, AttemptStatus.QUARANTINED.value]
        out: set[int] = set()
        with self._tx() as conn:
            for chunk in _chunks(sorted(set(image_ids)), 900):
                query = sa.select(attempts.c.image_id).where(
                    attempts.c.stage == stage,
                    attempts.c.status.in_(final),
                    attempts.c.image_id.in_(chunk),
                )
                out.update(int(row[0]) for row in conn.execute(query))
        return out

    def requeue(self, stage: str, statuses: Sequence[AttemptStatus]) -> list[int]:
        """Quarantined (or failed) images of `stage` become due now with a fresh budget."""
        where = (attempts.c.stage == stage) & attempts.c.status.in_([s.value for s in statuses])
        with self._tx() as conn:
            ids = [int(row[0]) for row in conn.execute(sa.select(attempts.c.image_id).where(where))]
            conn.execute(
                attempts.update()
                .where(where)
                .values(status=AttemptStatus.RETRY.value, attempts=0, next_attempt_at=utcnow())
            )
        return ids

    # -- claims ------------------------------------------------------------------------------
    def claim(self, name: str, *, lease_s: float, owner: str | None = None) -> bool:
        """Take the named claim unless someone else holds an unexpired one."""
        owner = owner or owner_id()
        now = utcnow()
        with self._tx() as conn:
            row = conn.execute(
                sa.select(claims.c.owner, claims.c.expires_at).where(claims.c.name == name)
            ).first()
            if row is not None:
                expires = _aware(row[1])
                live = expires is not None and expires > now and _owner_alive(str(row[0]))
                if row[0] != owner and live:
                    return False
                conn.execute(claims.delete().where(claims.c.name == name))
            conn.execute(
                claims.insert().values(
                    name=name, owner=owner, expires_at=now + timedelta(seconds=lease_s)
                )
            )
        return True

    def release(self, name: str, owner: str | None = None) -> None:
        owner = owner or owner_id()
        with self._tx() as conn:
            conn.execute(claims.delete().where((claims.c.name == name) & (claims.c.owner == owner)))

    # -- cursors -----------------------------------------------------------------------------
    def get_cursor(self, name: str) -> str | None:
        with self._tx() as conn:
            row = conn.execute(sa.select(cursors.c.value).where(cursors.c.name == name)).first()
        return None if row is None else str(row[0])

    def set_cursor(self, name: str, value: str) -> None:
        with self._tx() as conn:
            write_cursor(conn, name, value)


def write_cursor(conn: Connection, name: str, value: str) -> None:
    """Set a cursor inside the caller's transaction (with the writes it covers)."""
    if conn.execute(cursors.update().where(cursors.c.name == name).values(value=value)).rowcount:
        return
    conn.execute(cursors.insert().values(name=name, value=value))


def _owner_alive(owner: str) -> bool:
    """A claim of a dead process on this host is void; other hosts' claims run to expiry."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _label_rows(records: Sequence[ImageRecord]) -> list[dict[str, Any]]:
    rows: dict[tuple[int, int], bool] = {}
    for r in records:
        for cid in r.collection_ids:
            rows[(r.id, cid)] = False
        for cid in r.rejected_collection_ids:
            rows.setdefault((r.id, cid), True)  # a member that is also rejected stays a member
    return [{"image_id": i, "collection_id": c, "rejected": rej} for (i, c), rej in rows.items()]


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
