"""A small asyncio PostgreSQL client on the Python standard library, with the subset of asyncpg's
API this exercise needs. The workspace has no package installer, so it stands in for asyncpg;
code written against it reads like asyncpg code.

    pool = await pg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=10,
                                server_settings={"search_path": "myschema"})
    job_id = await pool.fetchval("INSERT INTO jobs (kind) VALUES ($1) RETURNING id", "ocr")
    rows = await pool.fetch("SELECT id, payload FROM jobs WHERE id = ANY($1)", [1, 2])
    async with pool.acquire() as conn:
        async with conn.transaction():
            row = await conn.fetchrow("SELECT ... FOR UPDATE SKIP LOCKED")
            status = await conn.execute("UPDATE ...")        # "UPDATE 1"

Differences from asyncpg worth knowing:
- Parameters travel as text and PostgreSQL infers their types from the query; add a cast
  ($1::bigint, $2::jsonb) where it cannot. dict parameters are sent as JSON, list and tuple ones as
  arrays, timedelta as an interval, datetime as an ISO timestamp.
- json and jsonb results are decoded (json.loads); asyncpg would return a str.
- One statement per call when there are arguments; without arguments a string may hold several
  (e.g. a schema file).
- A task cancelled while its query runs does not break the connection: the query finishes (and
  its result is dropped) before the connection serves anyone else.
- No LISTEN/NOTIFY, COPY or prepared-statement API.
This file is infrastructure for the exercise; you may use it as it is.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import struct
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

__all__ = [
    "Connection", "Pool", "Record", "connect", "create_pool",
    "PostgresError", "InterfaceError", "UniqueViolationError", "IntegrityConstraintViolationError",
    "SerializationError", "DeadlockDetectedError", "ConnectionDoesNotExistError",
]


class PostgresError(Exception):
    """An error reported by the server; `.sqlstate` holds its SQLSTATE code."""

    def __init__(self, message: str, sqlstate: str = "XX000", fields: dict | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.fields = fields or {}
        self.detail = self.fields.get("D")


class IntegrityConstraintViolationError(PostgresError):
    pass


class UniqueViolationError(IntegrityConstraintViolationError):
    pass


class SerializationError(PostgresError):
    pass


class DeadlockDetectedError(PostgresError):
    pass


class InterfaceError(Exception):
    """Misuse of the client, or a connection that is closed."""


class ConnectionDoesNotExistError(InterfaceError):
    pass


def _error_class(sqlstate: str):
    if sqlstate == "23505":
        return UniqueViolationError
    if sqlstate.startswith("23"):
        return IntegrityConstraintViolationError
    if sqlstate == "40001":
        return SerializationError
    if sqlstate == "40P01":
        return DeadlockDetectedError
    return PostgresError


class Record(tuple):
    """A result row: by position (row[0]) or by column name (row["id"]), like asyncpg.Record."""

    __slots__ = ()
    _names: dict[str, int] = {}

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def get(self, key, default=None):
        try:
            return self[key]
        except (KeyError, IndexError):
            return default

    def keys(self):
        return iter(self._names)

    def values(self):
        return iter(tuple(self))

    def items(self):
        return ((k, tuple.__getitem__(self, i)) for k, i in self._names.items())

    def __repr__(self):
        return "<Record " + " ".join(f"{k}={v!r}" for k, v in self.items()) + ">"


def _record_type(names: list[str]):
    return type("Record", (Record,), {"__slots__": (), "_names": {n: i for i, n in enumerate(names)}})


# --- values ------------------------------------------------------------------------------------


def _array_item(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (list, tuple)):
        return "{" + ",".join(_array_item(v) for v in value) + "}"
    raw = _encode(value).decode()
    return '"' + raw.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encode(value) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, (int, float, Decimal, UUID)):
        return str(value).encode()
    if isinstance(value, (datetime, date, time)):
        return value.isoformat().encode()
    if isinstance(value, timedelta):
        return f"{value.days} days {value.seconds + value.microseconds / 1e6} seconds".encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"\\x" + bytes(value).hex().encode()
    if isinstance(value, dict):
        return json.dumps(value).encode()
    if isinstance(value, (list, tuple)):
        return ("{" + ",".join(_array_item(v) for v in value) + "}").encode()
    return str(value).encode()


def _parse_timestamp(text: str, aware: bool) -> datetime:
    if text == "infinity":
        return datetime.max.replace(tzinfo=timezone.utc) if aware else datetime.max
    if text == "-infinity":
        return datetime.min.replace(tzinfo=timezone.utc) if aware else datetime.min
    if not aware:
        return datetime.fromisoformat(text)
    m = re.match(r"^(.*?)([+-]\d\d)(?::?(\d\d))?(?::?(\d\d))?$", text)
    base, hours, minutes, seconds = m.groups()
    offset = timedelta(hours=abs(int(hours)), minutes=int(minutes or 0), seconds=int(seconds or 0))
    return datetime.fromisoformat(base).replace(tzinfo=timezone(-offset if hours[0] == "-" else offset))


def _parse_interval(text: str) -> timedelta:
    total = timedelta()
    for amount, unit in re.findall(r"(-?\d+) (year|mon|day)s?", text):
        total += timedelta(days=int(amount) * {"year": 365, "mon": 30, "day": 1}[unit])
    m = re.search(r"(-?)(\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    if m:
        t = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)), seconds=float(m.group(4)))
        total += -t if m.group(1) else t
    return total


def _parse_array(text: str, item):
    """One-dimensional arrays: {1,2,NULL} / {"a b",c}."""
    inner = text[1:-1]
    if not inner:
        return []
    out = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|([^,]+)', inner):
        if m.group(1) is not None:
            out.append(item(re.sub(r"\\(.)", r"\1", m.group(1))))
        else:
            out.append(None if m.group(2) == "NULL" else item(m.group(2)))
    return out


_DECODERS = {
    16: lambda s: s == "t",
    20: int, 21: int, 23: int, 26: int,
    700: float, 701: float,
    1700: Decimal,
    114: json.loads, 3802: json.loads,
    1082: date.fromisoformat,
    1083: time.fromisoformat,
    1114: lambda s: _parse_timestamp(s, False),
    1184: lambda s: _parse_timestamp(s, True),
    1186: _parse_interval,
    2950: UUID,
    17: lambda s: bytes.fromhex(s[2:]),
    1005: lambda s: _parse_array(s, int), 1007: lambda s: _parse_array(s, int),
    1016: lambda s: _parse_array(s, int), 1009: lambda s: _parse_array(s, str),
    1015: lambda s: _parse_array(s, str),
}


def _decode(oid: int, raw: bytes):
    text = raw.decode()
    decoder = _DECODERS.get(oid)
    return decoder(text) if decoder else text


def _msg(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def _cstr(s: str) -> bytes:
    return s.encode() + b"\0"


# --- connection --------------------------------------------------------------------------------


class _Result:
    __slots__ = ("rows", "status")

    def __init__(self):
        self.rows: list = []
        self.status = ""


class Connection:
    def __init__(self):
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._tx_depth = 0

    async def _open(self, dsn: str | None, server_settings: dict | None, timeout: float) -> None:
        url = dsn or os.environ.get("DATABASE_URL") or ""
        u = urlparse(url)
        query = {k: v[-1] for k, v in parse_qs(u.query).items()}
        self._user = unquote(u.username or "") or os.environ.get("PGUSER") or "postgres"
        self._password = unquote(u.password or "") or os.environ.get("PGPASSWORD") or ""
        database = (u.path or "/").lstrip("/") or os.environ.get("PGDATABASE") or self._user
        host = unquote(u.hostname or "") or query.get("host") or os.environ.get("PGHOST") or "/tmp"
        port = u.port or int(os.environ.get("PGPORT", "5432"))
        try:
            if host.startswith("/"):
                opening = asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}", limit=2**20)
            else:
                opening = asyncio.open_connection(host, port, limit=2**20)
            self._reader, self._writer = await asyncio.wait_for(opening, timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise ConnectionDoesNotExistError(f"cannot connect to PostgreSQL at {host}:{port}: {exc!r}") from exc
        params = {"user": self._user, "database": database, "client_encoding": "UTF8",
                  "DateStyle": "ISO", "TimeZone": "UTC", "IntervalStyle": "postgres",
                  "application_name": "jobqueue"}
        if "options" in query:
            params["options"] = query["options"]
        params.update({k: str(v) for k, v in (server_settings or {}).items()})
        payload = struct.pack("!i", 196608) + b"".join(_cstr(k) + _cstr(v) for k, v in params.items()) + b"\0"
        self._writer.write(struct.pack("!i", len(payload) + 4) + payload)
        await self._authenticate()
        await self._read_until_ready(None)

    async def _read_message(self) -> tuple[bytes, bytes]:
        try:
            header = await self._reader.readexactly(5)
            (length,) = struct.unpack("!i", header[1:])
            return header[:1], await self._reader.readexactly(length - 4)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self._abort()
            raise ConnectionDoesNotExistError("the server closed the connection") from exc

    @staticmethod
    def _error(payload: bytes) -> PostgresError:
        fields = {chr(p[0]): p[1:].decode(errors="replace") for p in payload.split(b"\0") if p}
        code = fields.get("C", "XX000")
        message = fields.get("M", "error") + (f" ({fields['D']})" if fields.get("D") else "")
        return _error_class(code)(message, code, fields)

    async def _authenticate(self) -> None:
        first_bare = ""
        while True:
            kind, payload = await self._read_message()
            if kind == b"E":
                raise self._error(payload)
            (code,) = struct.unpack("!i", payload[:4])
            if code == 0:
                return
            if code == 3:
                self._writer.write(_msg(b"p", _cstr(self._password)))
            elif code == 5:
                inner = hashlib.md5((self._password + self._user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + payload[4:8]).hexdigest()
                self._writer.write(_msg(b"p", _cstr("md5" + outer)))
            elif code == 10:
                first_bare = "n=,r=" + base64.b64encode(os.urandom(18)).decode()
                body = ("n,," + first_bare).encode()
                self._writer.write(_msg(b"p", _cstr("SCRAM-SHA-256") + struct.pack("!i", len(body)) + body))
            elif code == 11:
                server_first = payload[4:].decode()
                attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
                salted = hashlib.pbkdf2_hmac("sha256", self._password.encode(),
                                             base64.b64decode(attrs["s"]), int(attrs["i"]))
                client_key = hmac.new(salted, b"Client Key", "sha256").digest()
                without_proof = f"c=biws,r={attrs['r']}"
                signature = hmac.new(hashlib.sha256(client_key).digest(),
                                     f"{first_bare},{server_first},{without_proof}".encode(), "sha256").digest()
                proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
                self._writer.write(_msg(b"p", f"{without_proof},p={proof}".encode()))
            elif code == 12:
                pass
            else:
                raise InterfaceError(f"unsupported authentication method {code}")

    async def _read_until_ready(self, result: _Result | None) -> None:
        error = None
        columns: list[int] = []
        row_type = Record
        while True:
            kind, payload = await self._read_message()
            if kind == b"Z":
                if error is not None:
                    raise error
                return
            if kind == b"E":
                error = error or self._error(payload)
            elif kind == b"T":
                (count,) = struct.unpack("!h", payload[:2])
                pos, names, columns = 2, [], []
                for _ in range(count):
                    end = payload.index(b"\0", pos)
                    names.append(payload[pos:end].decode())
                    pos = end + 1
                    columns.append(struct.unpack("!i", payload[pos + 6:pos + 10])[0])
                    pos += 18
                row_type = _record_type(names)
                if result is not None:
                    result.rows = []
            elif kind == b"D" and result is not None:
                (count,) = struct.unpack("!h", payload[:2])
                pos, values = 2, []
                for i in range(count):
                    (length,) = struct.unpack("!i", payload[pos:pos + 4])
                    pos += 4
                    if length < 0:
                        values.append(None)
                    else:
                        values.append(_decode(columns[i], payload[pos:pos + length]))
                        pos += length
                result.rows.append(row_type(values))
            elif kind == b"C" and result is not None:
                result.status = payload.rstrip(b"\0").decode()

    async def _query(self, query: str, args: Sequence) -> _Result:
        if self._closed:
            raise ConnectionDoesNotExistError("the connection is closed")
        result = _Result()
        if not args:
            self._writer.write(_msg(b"Q", _cstr(query)))
        else:
            bind = bytearray(b"\0\0") + struct.pack("!hh", 0, len(args))
            for value in args:
                raw = _encode(value)
                bind += struct.pack("!i", -1) if raw is None else struct.pack("!i", len(raw)) + raw
            bind += struct.pack("!h", 0)
            self._writer.write(
                _msg(b"P", b"\0" + _cstr(query) + struct.pack("!h", 0)) + _msg(b"B", bytes(bind))
                + _msg(b"D", b"P\0") + _msg(b"E", b"\0" + struct.pack("!i", 0)) + _msg(b"S", b"")
            )
        await self._read_until_ready(result)
        return result

    async def _locked(self, query: str, args: Sequence) -> _Result:
        async with self._lock:
            try:
                return await self._query(query, args)
            except (PostgresError, InterfaceError):
                raise
            except BaseException:
                self._abort()  # the protocol state is unknown
                raise

    async def _run(self, query: str, args: Sequence) -> _Result:
        # Shielded: if the caller is cancelled, the query still completes and leaves the
        # connection in a clean state for its next user.
        task = asyncio.ensure_future(self._locked(query, args))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise

    # -- asyncpg-style API --

    async def execute(self, query: str, *args) -> str:
        """Runs the statement(s); returns the last command's status, e.g. "UPDATE 3"."""
        return (await self._run(query, args)).status

    async def fetch(self, query: str, *args) -> list[Record]:
        return (await self._run(query, args)).rows

    async def fetchrow(self, query: str, *args) -> Record | None:
        rows = (await self._run(query, args)).rows
        return rows[0] if rows else None

    async def fetchval(self, query: str, *args, column: int = 0):
        row = await self.fetchrow(query, *args)
        return None if row is None else row[column]

    def transaction(self) -> "Transaction":
        """`async with conn.transaction():` commits at the end of the block, rolls back if it
        raises (a savepoint when nested)."""
        return Transaction(self)

    def is_in_transaction(self) -> bool:
        return self._tx_depth > 0

    def is_closed(self) -> bool:
        return self._closed

    def _abort(self) -> None:
        self._closed = True
        if self._writer is not None:
            self._writer.close()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._writer.write(_msg(b"X", b""))
                self._writer.close()
                await asyncio.wait_for(self._writer.wait_closed(), 1)
            except (OSError, asyncio.TimeoutError, RuntimeError):
                pass

    def terminate(self) -> None:
        self._abort()


class Transaction:
    def __init__(self, conn: Connection):
        self._conn = conn
        self._depth = 0

    async def start(self) -> None:
        self._depth = self._conn._tx_depth
        await self._conn.execute("BEGIN" if self._depth == 0 else f"SAVEPOINT sp_{self._depth}")
        self._conn._tx_depth += 1

    async def commit(self) -> None:
        self._conn._tx_depth = self._depth
        await self._conn.execute("COMMIT" if self._depth == 0 else f"RELEASE SAVEPOINT sp_{self._depth}")

    async def rollback(self) -> None:
        self._conn._tx_depth = self._depth
        if not self._conn.is_closed():
            await self._conn.execute("ROLLBACK" if self._depth == 0 else f"ROLLBACK TO SAVEPOINT sp_{self._depth}")

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, exc_type, exc, tb):
        if exc_type is None:
            await self.commit()
        else:
            try:
                await self.rollback()
            except (PostgresError, InterfaceError):
                pass
        return False


async def connect(dsn: str | None = None, *, server_settings: dict | None = None,
                  timeout: float = 10.0) -> Connection:
    conn = Connection()
    await conn._open(dsn, server_settings, timeout)
    return conn


# --- pool --------------------------------------------------------------------------------------


class _Acquire:
    def __init__(self, pool: "Pool", timeout: float | None):
        self._pool, self._timeout, self._conn = pool, timeout, None

    def __await__(self):
        return self._pool._acquire(self._timeout).__await__()

    async def __aenter__(self) -> Connection:
        self._conn = await self._pool._acquire(self._timeout)
        return self._conn

    async def __aexit__(self, *exc):
        conn, self._conn = self._conn, None
        await self._pool.release(conn)


class Pool:
    """Up to max_size connections, handed out one user at a time."""

    def __init__(self, dsn, min_size, max_size, server_settings):
        self._dsn, self._min, self._max = dsn, min_size, max_size
        self._settings = server_settings
        self._idle: list[Connection] = []
        self._count = 0
        self._cond = asyncio.Condition()
        self._closed = False

    async def _init(self) -> "Pool":
        for _ in range(self._min):
            self._idle.append(await connect(self._dsn, server_settings=self._settings))
            self._count += 1
        return self

    async def _acquire(self, timeout: float | None) -> Connection:
        async def get():
            async with self._cond:
                while True:
                    if self._closed:
                        raise InterfaceError("the pool is closed")
                    while self._idle:
                        conn = self._idle.pop()
                        if not conn.is_closed():
                            return conn
                        self._count -= 1
                    if self._count < self._max:
                        self._count += 1
                        break
                    await self._cond.wait()
            try:
                return await connect(self._dsn, server_settings=self._settings)
            except BaseException:
                async with self._cond:
                    self._count -= 1
                    self._cond.notify()
                raise

        return await asyncio.wait_for(get(), timeout) if timeout else await get()

    def acquire(self, *, timeout: float | None = None) -> _Acquire:
        """`async with pool.acquire() as conn:` (or `conn = await pool.acquire()` and
        `await pool.release(conn)`)."""
        return _Acquire(self, timeout)

    async def release(self, conn: Connection) -> None:
        if conn is None:
            return
        if conn._tx_depth and not conn.is_closed():  # left in a transaction: reset it
            conn._tx_depth = 0
            try:
                await conn.execute("ROLLBACK")
            except (PostgresError, InterfaceError):
                conn.terminate()
        async with self._cond:
            if conn.is_closed() or self._closed:
                self._count -= 1
                if not conn.is_closed():
                    await conn.close()
            else:
                self._idle.append(conn)
            self._cond.notify()

    async def execute(self, query: str, *args) -> str:
        async with self.acquire() as conn:
            return await conn.execute(query, *args)

    async def fetch(self, query: str, *args) -> list[Record]:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args) -> Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args, column: int = 0):
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args, column=column)

    def get_size(self) -> int:
        return self._count

    async def close(self) -> None:
        async with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for conn in idle:
            await conn.close()

    def terminate(self) -> None:
        self._closed = True
        for conn in self._idle:
            conn.terminate()
        self._idle = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()


async def create_pool(dsn: str | None = None, *, min_size: int = 1, max_size: int = 10,
                      server_settings: dict | None = None, **_ignored) -> Pool:
    return await Pool(dsn, min_size, max_size, server_settings)._init()
