"""libpq's pipeline mode on the write connection, flushed once per round trip.

A batch of write transactions (``node.store.pg``) sends its statements without waiting for
their answers and waits only where the code reads a result (a fetch, a row count) and at the
end of each transaction (a Sync). psycopg's own pipeline does the same, but it hands every
statement to the socket as soon as it is queued and polls twice for it: on this project's
2-core machine, 27 sends and 52 polls per cross-region redemption at the issuer, each send
waking the database's backend for one message. Here a statement goes into libpq's output
buffer and the buffer is sent once, when a result is wanted whose statement is still in it
(a result already on its way is just waited for): one send, one wait, and
the backend reads the whole round trip's messages at once (docs/benchmarks.md has the
figures).

What stays psycopg's: the connection (libpq underneath), the adaptation of values read back
(the connection's loaders, so NUMERIC fen are ``int`` here too) and its exceptions, built from
the server's error as psycopg builds them, so a refusal of the books raises the same class on
either path.

**Statements** are prepared on the server the first time they are sent (named ``s1``,
``s2``…, for the connection's lifetime; at most ``MAX_PREPARED``, after which new texts go
unnamed). ``?`` and ``:name`` placeholders become ``$1``… once per statement text.
**Parameters** go with the types psycopg gives them: ``int`` as the smallest integer type
that holds it, ``str`` as unknown (the server takes the column's type), ``bytes`` as BYTEA in
binary, ``None`` as NULL. Anything else is refused before it is sent (the store writes no
other kind of value).

**Errors.** In pipeline mode the server skips everything after an error until the next Sync.
The first error of a segment is raised once: at the first read of a result at or after it,
else at the Sync. Results the server skipped are never raised on their own.
"""

from __future__ import annotations

import functools
import itertools
import re
import select
from collections import deque
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.adapt import Transformer

MAX_PREPARED = 1_000

_OK = frozenset({pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY})
_ABORTED = pq.ExecStatus.PIPELINE_ABORTED
_SYNC = pq.ExecStatus.PIPELINE_SYNC
_INT2, _INT4, _INT8, _NUMERIC = 21, 23, 20, 1700
_BYTEA, _UNKNOWN, _BOOL, _FLOAT8 = 17, 0, 16, 701
# A store statement's placeholders (``?``, ``:name``) among what must be left alone: quoted
# text, ``::`` casts and comments (and ``%``, which psycopg's style must double). Both
# rewritings use it: ``dollar_sql`` here, ``node.store.pgconn.pg_sql`` for psycopg.
SQL_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|\?|%|:[A-Za-z_][A-Za-z0-9_]*|--[^\n]*")


@functools.cache
def dollar_sql(sql: str) -> tuple[bytes, tuple[str, ...] | None]:
    """A store statement with libpq's ``$n`` placeholders, and the parameter names in ``$n``
    order when it takes them by name (``:name``), else None. Quoted text, ``::`` casts and
    comments are left alone."""
    names: list[str] = []
    count = 0

    def one(m: re.Match[str]) -> str:
        nonlocal count
        t = m.group(0)
        if t == "?":
            count += 1
            return f"${count}"
        if t.startswith(":") and t != "::":
            if t[1:] not in names:
                names.append(t[1:])
            return f"${names.index(t[1:]) + 1}"
        return t

    text = SQL_TOKENS.sub(one, sql)
    if names and count:
        raise ValueError(f"a statement mixes ? and :name placeholders: {sql[:60]!r}")
    return text.encode(), tuple(names) if names else None


def _encode(value: Any) -> tuple[bytes | None, int, int]:
    """(the value as sent, its type's oid, its format: 0 text, 1 binary)."""
    if value is None:
        return None, _UNKNOWN, 0
    kind = type(value)
    if kind is int:  # the smallest integer type that holds it, as psycopg chooses
        if -(2**15) <= value < 2**15:
            oid = _INT2
        elif -(2**31) <= value < 2**31:
            oid = _INT4
        elif -(2**63) <= value < 2**63:
            oid = _INT8
        else:
            oid = _NUMERIC
        return str(value).encode(), oid, 0
    if kind is str:
        return value.encode(), _UNKNOWN, 0
    if kind is bytes or kind is bytearray or kind is memoryview:
        return bytes(value), _BYTEA, 1
    if kind is bool:
        return (b"t" if value else b"f"), _BOOL, 0
    if kind is float:
        return repr(value).encode(), _FLOAT8, 0
    raise TypeError(f"the store does not send a {kind.__name__} to PostgreSQL")


class Slot:
    """One statement's result in the pipeline, with the face of a cursor: reading it (a
    fetch, the row count, iteration) waits for it and for everything sent before it."""

    __slots__ = ("_pipe", "_rows", "error", "result")

    def __init__(self, pipe: PgPipeline) -> None:
        self._pipe = pipe
        self.result: pq.abc.PGresult | None = None
        self.error: BaseException | None = None
        self._rows: deque[Any] | None = None

    def _wait(self) -> pq.abc.PGresult:
        if self.result is None:
            self._pipe.read_through(self)
        self._pipe.raise_pending()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def _all(self) -> deque[Any]:
        if self._rows is None:
            self._rows = deque(self._pipe.rows_of(self._wait()))
        return self._rows

    @property
    def rowcount(self) -> int:
        count = self._wait().command_tuples
        return -1 if count is None else int(count)

    @property
    def description(self) -> list[tuple[str, None, None, None, None, None, None]] | None:
        result = self._wait()
        if not result.nfields:
            return None
        return [
            ((result.fname(i) or b"").decode(), None, None, None, None, None, None)
            for i in range(result.nfields)
        ]

    def fetchone(self) -> Any:
        rows = self._all()
        return rows.popleft() if rows else None

    def fetchall(self) -> list[Any]:
        rows = self._all()
        out = list(rows)
        rows.clear()
        return out

    def fetchmany(self, size: int) -> list[Any]:
        rows = self._all()
        return [rows.popleft() for _ in range(min(size, len(rows)))]

    def __iter__(self) -> Any:
        rows = self._all()
        while rows:
            yield rows.popleft()


class Prepared:
    """The statements prepared on one connection, by text and parameter types; the names are
    never reused."""

    __slots__ = ("_count", "names")

    def __init__(self) -> None:
        self.names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self._count = itertools.count(1)

    def new(self, key: tuple[bytes, tuple[int, ...]]) -> bytes | None:
        if len(self.names) >= MAX_PREPARED:
            return None
        name = self.names[key] = b"s%d" % next(self._count)
        return name


class PgPipeline:
    """A connection in pipeline mode for one batch (``with``): ``send`` queues a statement,
    ``sync`` ends a segment and raises its error, if any. ``prepared`` is the connection's
    own, kept across batches; ``rows`` gives the row class of a result."""

    def __init__(self, raw: psycopg.Connection[Any], prepared: Prepared, rows: Any) -> None:
        self._raw = raw
        self._pg = raw.pgconn
        self._prepared = prepared
        self._row_class = rows
        self._tx = Transformer.from_context(raw)
        # What was sent, oldest first: a statement's Slot, the key of a statement being
        # prepared, or None for a Sync.
        self._queue: deque[Any] = deque()
        self._kinds: deque[int] = deque()  # 0 a statement, 1 a prepare, 2 a Sync
        self._unsent = 0  # how many of the newest in _queue are still in libpq's buffer
        self._error: BaseException | None = None  # the segment's first error, not yet raised
        self._poll = select.poll()
        self._fd = self._pg.socket

    def __enter__(self) -> PgPipeline:
        self._pg.enter_pipeline_mode()
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        # On the way out of a failure, what is still in flight is read and dropped (the
        # failure is already the caller's).
        self._error = None
        try:
            if self._queue:
                try:
                    self.sync()
                except psycopg.Error:
                    if kind is None:
                        raise
        finally:
            if self._pg.status == pq.ConnStatus.OK and not self._queue:
                self._pg.exit_pipeline_mode()

    # Sending ------------------------------------------------------------------------------

    def send(self, sql: str, params: Any = ()) -> Slot:
        text, names = dollar_sql(sql)
        if names is not None:
            params = tuple(params[n] for n in names)
        values: list[bytes | None] = []
        types: list[int] = []
        formats: list[int] = []
        for value in params or ():
            data, oid, fmt = _encode(value)
            values.append(data)
            types.append(oid)
            formats.append(fmt)
        key = (text, tuple(types))
        name = self._prepared.names.get(key)
        pg = self._pg
        if name is None:
            name = self._prepared.new(key)
            if name is not None:
                pg.send_prepare(name, text, param_types=types)
                self._queue.append(key)
                self._kinds.append(1)
                self._unsent += 1
        if name is None:
            pg.send_query_params(text, values, param_types=types, param_formats=formats)
        else:
            pg.send_query_prepared(name, values, param_formats=formats)
        slot = Slot(self)
        self._queue.append(slot)
        self._kinds.append(0)
        self._unsent += 1
        return slot

    def sync(self) -> None:
        """End the segment: wait for every answer sent so far; raise its first error."""
        self._pg.pipeline_sync()  # sent at once, with what was buffered before it
        self._queue.append(None)
        self._kinds.append(2)
        self._send_buffered()
        while self._queue:
            self._read_one()
        self.raise_pending()

    # Reading ------------------------------------------------------------------------------

    def read_through(self, slot: Slot) -> None:
        while slot.result is None and slot.error is None:
            self._read_one()

    def raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def rows_of(self, result: pq.abc.PGresult) -> list[Any]:
        count = result.ntuples
        if not count:
            return []
        tx = self._tx
        tx.set_pgresult(result)
        return tx.load_rows(0, count, self._row_class(result))

    def _read_one(self) -> None:
        """Read the answer to the oldest statement (or Sync) sent."""
        if self._unsent >= len(self._queue):  # its statement is still in the buffer
            self._flush()
        kind = self._kinds.popleft()
        item = self._queue.popleft()
        slot = item if kind == 0 else None
        first = self._next_result()
        if kind == 2:
            if first is None or first.status != _SYNC:
                raise psycopg.OperationalError("the database answered out of order")
            return
        result = first
        while first is not None:  # a statement's answer ends with a NULL
            first = self._next_result()
        if result is None:
            raise psycopg.OperationalError("the database sent no answer")
        status = result.status
        if status in _OK:
            if slot is not None:
                slot.result = result
            return
        if status == _ABORTED:
            error: BaseException = pg_errors.PipelineAborted(
                "skipped: an earlier statement of this transaction failed"
            )
        else:
            error = pg_errors.error_from_result(result, encoding=self._raw.info.encoding)
            if self._error is None:
                self._error = error
        if slot is not None:
            slot.error = error
        if kind == 1:  # not prepared after all: prepared again at its next use
            self._prepared.names.pop(item, None)

    def _next_result(self) -> pq.abc.PGresult | None:
        pg = self._pg
        while pg.is_busy():
            self._wait(select.POLLIN)
            pg.consume_input()
        return pg.get_result()

    def _flush(self) -> None:
        """Send what is buffered, with a request that the server send its answers so far
        (it holds them until a Sync or such a request)."""
        self._pg.send_flush_request()
        self._send_buffered()

    def _send_buffered(self) -> None:
        pg = self._pg
        while pg.flush():  # a nonblocking socket took part of it
            if self._wait(select.POLLIN | select.POLLOUT) & select.POLLIN:
                pg.consume_input()
        self._unsent = 0

    def _wait(self, events: int) -> int:
        poll = self._poll
        poll.register(self._fd, events)
        ready = 0
        while not ready:
            for _fd, events in poll.poll():
                ready |= events
        if ready & (select.POLLERR | select.POLLHUP | select.POLLNVAL) and not ready & (
            select.POLLIN
        ):
            ready |= select.POLLIN  # let libpq read the failure and report it
        return ready
