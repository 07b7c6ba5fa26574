"""Database access: a small psycopg-3-style PostgreSQL client on the Python standard library.

`get_db()` returns this thread's connection to `DATABASE_URL` (e.g.
postgres://clarity@127.0.0.1:5432/clarity; `?options=-c%20search_path%3Dmyschema` sets session
options). It is in **autocommit mode**: every statement commits on its own unless it runs inside
`with db.transaction():`, which commits at the end of the block or rolls back if the block raises.

    row = db.execute("SELECT balance_cents, status FROM invoices WHERE id = %s", (7,)).fetchone()
    row.balance_cents, row[1]          # rows are named tuples
    db.execute("UPDATE ...").rowcount   # rows affected

Parameters use `%s` placeholders (a literal % is written %%) and are sent separately from the SQL,
never interpolated. Errors raise `DatabaseError` (`IntegrityError`, `UniqueViolation`, ...) with
the server's SQLSTATE in `.sqlstate`. This file is infrastructure, not one of the defects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import threading
from collections import namedtuple
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

__all__ = [
    "Connection",
    "DatabaseError",
    "IntegrityError",
    "UniqueViolation",
    "close_db",
    "connect",
    "get_db",
]


class DatabaseError(Exception):
    def __init__(self, message: str, sqlstate: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate
        self.fields = fields or {}


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class UniqueViolation(IntegrityError):
    pass


class SerializationFailure(DatabaseError):
    pass


def _error_class(sqlstate: str):
    if sqlstate == "23505":
        return UniqueViolation
    if sqlstate.startswith("23"):
        return IntegrityError
    if sqlstate in ("40001", "40P01"):
        return SerializationFailure
    if sqlstate.startswith(("08", "53", "57")):
        return OperationalError
    return DatabaseError


# --- values ----------------------------------------------------------------------------------


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
        return f"{value.total_seconds()} seconds".encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"\\x" + bytes(value).hex().encode()
    if isinstance(value, (dict, list)):
        return json.dumps(value).encode()
    return str(value).encode()


def _parse_timestamp(text: str, aware: bool) -> datetime:
    if text in ("infinity", "-infinity"):
        return datetime.max if text == "infinity" else datetime.min
    if aware:
        m = re.match(r"^(.*?)([+-]\d\d)(?::?(\d\d))?(?::?(\d\d))?$", text)
        base, hours, minutes, seconds = m.groups()
        sign = -1 if hours.startswith("-") else 1
        offset = timedelta(hours=abs(int(hours)), minutes=int(minutes or 0), seconds=int(seconds or 0))
        value = datetime.fromisoformat(base)
        return value.replace(tzinfo=timezone(sign * offset))
    return datetime.fromisoformat(text)


def _parse_interval(text: str) -> timedelta:
    # IntervalStyle postgres: "1 day 02:03:04.5", "-00:00:01", "3 days"
    days = 0
    m = re.search(r"(-?\d+) days?", text)
    if m:
        days = int(m.group(1))
    total = timedelta(days=days)
    m = re.search(r"(-?)(\d+):(\d\d):(\d\d(?:\.\d+)?)", text)
    if m:
        t = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)), seconds=float(m.group(4)))
        total += -t if m.group(1) else t
    return total


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
}


def _decode(oid: int, raw: bytes | None):
    if raw is None:
        return None
    text = raw.decode()
    decoder = _DECODERS.get(oid)
    return decoder(text) if decoder else text


_PLACEHOLDER = re.compile(r"%%|%s|%\((\w+)\)s")


def _convert_query(sql: str, params) -> tuple[str, list]:
    """psycopg's %s placeholders to PostgreSQL's $n ones."""
    if params is None:
        return sql, []
    values: list = []
    named: dict[str, int] = {}

    def repl(m):
        if m.group(0) == "%%":
            return "%"
        if m.group(1):
            name = m.group(1)
            if name not in named:
                values.append(params[name])
                named[name] = len(values)
            return f"${named[name]}"
        values.append(params[len(values)])
        return f"${len(values)}"

    converted = _PLACEHOLDER.sub(repl, sql)
    if not isinstance(params, dict) and len(values) != len(params):
        raise DatabaseError(f"the query has {len(values)} placeholders but {len(params)} parameters")
    return converted, values


# --- wire protocol ---------------------------------------------------------------------------


def _msg(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


def _cstr(s: str) -> bytes:
    return s.encode() + b"\0"


class Cursor:
    def __init__(self, conn: "Connection"):
        self._conn = conn
        self.description: list[tuple] | None = None
        self.rowcount = -1
        self.statusmessage: str | None = None
        self._rows: list = []
        self._pos = 0

    def execute(self, sql: str, params=None) -> "Cursor":
        self._conn._run(self, sql, params)
        return self

    def fetchone(self):
        if self._pos >= len(self._rows):
            return None
        row = self._rows[self._pos]
        self._pos += 1
        return row

    def fetchall(self) -> list:
        rows = self._rows[self._pos:]
        self._pos = len(self._rows)
        return rows

    def fetchmany(self, size: int = 1) -> list:
        rows = self._rows[self._pos:self._pos + size]
        self._pos += len(rows)
        return rows

    def __iter__(self):
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Connection:
    """One PostgreSQL session. Not safe to share between threads: use one per thread."""

    def __init__(self, url: str | None = None, *, connect_timeout: float = 10.0):
        url = url or os.environ.get("DATABASE_URL") or ""
        u = urlparse(url)
        query = {k: v[-1] for k, v in parse_qs(u.query).items()}
        self._user = unquote(u.username or "") or os.environ.get("PGUSER") or "postgres"
        self._password = unquote(u.password or "") or os.environ.get("PGPASSWORD")
        self._database = (u.path or "/").lstrip("/") or os.environ.get("PGDATABASE") or self._user
        host = unquote(u.hostname or "") or query.get("host") or os.environ.get("PGHOST") or "/tmp"
        port = u.port or int(os.environ.get("PGPORT", "5432"))
        if host.startswith("/"):
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target = f"{host}/.s.PGSQL.{port}"
        else:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            target = (host, port)
        self._sock.settimeout(connect_timeout)
        try:
            self._sock.connect(target)
        except OSError as exc:
            self._sock.close()
            raise OperationalError(f"cannot connect to PostgreSQL at {target}: {exc}") from exc
        self._sock.settimeout(None)
        self._buf = bytearray()
        self._closed = False
        self._tx_depth = 0
        self.autocommit = True
        self.info_status = "I"
        params = {"user": self._user, "database": self._database, "client_encoding": "UTF8",
                  "DateStyle": "ISO", "TimeZone": "UTC", "application_name": "invoices"}
        if "options" in query:
            params["options"] = query["options"]
        payload = struct.pack("!i", 196608) + b"".join(_cstr(k) + _cstr(v) for k, v in params.items()) + b"\0"
        self._sock.sendall(struct.pack("!i", len(payload) + 4) + payload)
        self._authenticate()
        self._read_until_ready(None)

    # -- low level --

    def _recv(self, n: int) -> bytes:
        while len(self._buf) < n:
            chunk = self._sock.recv(65536)
            if not chunk:
                self._closed = True
                raise OperationalError("the server closed the connection")
            self._buf += chunk
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _read_message(self) -> tuple[bytes, bytes]:
        header = self._recv(5)
        kind = header[:1]
        (length,) = struct.unpack("!i", header[1:])
        return kind, self._recv(length - 4)

    @staticmethod
    def _error_fields(payload: bytes) -> dict:
        fields = {}
        for part in payload.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode(errors="replace")
        return fields

    def _raise_error(self, payload: bytes):
        fields = self._error_fields(payload)
        code = fields.get("C", "XX000")
        message = fields.get("M", "error")
        if fields.get("D"):
            message += f" ({fields['D']})"
        return _error_class(code)(message, code, fields)

    def _authenticate(self) -> None:
        scram = None
        while True:
            kind, payload = self._read_message()
            if kind == b"E":
                raise self._raise_error(payload)
            if kind != b"R":
                raise OperationalError(f"unexpected message {kind!r} during authentication")
            (code,) = struct.unpack("!i", payload[:4])
            if code == 0:
                return
            if code == 3:
                self._sock.sendall(_msg(b"p", _cstr(self._password or "")))
            elif code == 5:
                salt = payload[4:8]
                inner = hashlib.md5((self._password or "").encode() + self._user.encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + salt).hexdigest()
                self._sock.sendall(_msg(b"p", _cstr("md5" + outer)))
            elif code == 10:
                nonce = base64.b64encode(os.urandom(18)).decode()
                first_bare = f"n=,r={nonce}"
                scram = {"nonce": nonce, "first_bare": first_bare}
                body = ("n,," + first_bare).encode()
                self._sock.sendall(_msg(b"p", _cstr("SCRAM-SHA-256") + struct.pack("!i", len(body)) + body))
            elif code == 11:
                server_first = payload[4:].decode()
                attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
                salted = hashlib.pbkdf2_hmac("sha256", (self._password or "").encode(),
                                             base64.b64decode(attrs["s"]), int(attrs["i"]))
                client_key = hmac.new(salted, b"Client Key", "sha256").digest()
                stored_key = hashlib.sha256(client_key).digest()
                without_proof = f"c=biws,r={attrs['r']}"
                auth_message = f"{scram['first_bare']},{server_first},{without_proof}".encode()
                signature = hmac.new(stored_key, auth_message, "sha256").digest()
                proof = bytes(a ^ b for a, b in zip(client_key, signature))
                final = f"{without_proof},p={base64.b64encode(proof).decode()}"
                self._sock.sendall(_msg(b"p", final.encode()))
            elif code == 12:
                pass
            else:
                raise OperationalError(f"unsupported authentication method {code}")

    def _read_until_ready(self, cursor: Cursor | None) -> None:
        error = None
        columns: list[tuple[str, int]] = []
        row_type = None
        while True:
            kind, payload = self._read_message()
            if kind == b"Z":
                self.info_status = payload.decode()
                if error is not None:
                    raise error
                return
            if kind == b"E":
                if error is None:
                    error = self._raise_error(payload)
            elif kind == b"T" and cursor is not None:
                (count,) = struct.unpack("!h", payload[:2])
                pos = 2
                columns = []
                for _ in range(count):
                    end = payload.index(b"\0", pos)
                    name = payload[pos:end].decode()
                    pos = end + 1
                    _table, _col, oid, _size, _mod, _fmt = struct.unpack("!ihihih", payload[pos:pos + 18])
                    pos += 18
                    columns.append((name, oid))
                cursor.description = [(name, oid, None, None, None, None, None) for name, oid in columns]
                row_type = namedtuple("Row", [name for name, _ in columns], rename=True)
                cursor._rows = []
            elif kind == b"D" and cursor is not None:
                (count,) = struct.unpack("!h", payload[:2])
                pos = 2
                values = []
                for i in range(count):
                    (length,) = struct.unpack("!i", payload[pos:pos + 4])
                    pos += 4
                    if length < 0:
                        values.append(None)
                    else:
                        values.append(_decode(columns[i][1], payload[pos:pos + length]))
                        pos += length
                cursor._rows.append(row_type(*values))
            elif kind == b"C" and cursor is not None:
                tag = payload.rstrip(b"\0").decode()
                cursor.statusmessage = tag
                last = tag.rsplit(" ", 1)[-1]
                cursor.rowcount = int(last) if last.isdigit() else -1
            # ParseComplete, BindComplete, NoData, notices, parameter status: nothing to do

    def _run(self, cursor: Cursor, sql: str, params) -> None:
        if self._closed:
            raise OperationalError("the connection is closed")
        cursor.description = None
        cursor._rows = []
        cursor._pos = 0
        cursor.rowcount = -1
        query, values = _convert_query(sql, params)
        if not values and params is None:
            self._sock.sendall(_msg(b"Q", _cstr(query)))
        else:
            bind = bytearray(b"\0\0")  # unnamed portal, unnamed statement
            bind += struct.pack("!h", 0)  # all parameters in text format
            bind += struct.pack("!h", len(values))
            for v in values:
                raw = _encode(v)
                if raw is None:
                    bind += struct.pack("!i", -1)
                else:
                    bind += struct.pack("!i", len(raw)) + raw
            bind += struct.pack("!h", 0)  # all results in text format
            self._sock.sendall(
                _msg(b"P", b"\0" + _cstr(query) + struct.pack("!h", 0))
                + _msg(b"B", bytes(bind))
                + _msg(b"D", b"P\0")
                + _msg(b"E", b"\0" + struct.pack("!i", 0))
                + _msg(b"S", b"")
            )
        self._read_until_ready(cursor)

    # -- public API --

    def execute(self, sql: str, params=None) -> Cursor:
        return self.cursor().execute(sql, params)

    def cursor(self) -> Cursor:
        return Cursor(self)

    @contextmanager
    def transaction(self):
        """Runs the block in a transaction (a savepoint when nested): commits when it ends, rolls
        back if it raises."""
        depth = self._tx_depth
        self.execute("BEGIN" if depth == 0 else f"SAVEPOINT tx_{depth}")
        self._tx_depth += 1
        try:
            yield self
        except BaseException:
            self._tx_depth = depth
            if not self._closed:
                try:
                    self.execute("ROLLBACK" if depth == 0 else f"ROLLBACK TO SAVEPOINT tx_{depth}")
                except (DatabaseError, OSError):
                    pass
            raise
        else:
            self._tx_depth = depth
            self.execute("COMMIT" if depth == 0 else f"RELEASE SAVEPOINT tx_{depth}")

    def commit(self) -> None:
        if self.info_status != "I":
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.info_status != "I":
            self.execute("ROLLBACK")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._sock.sendall(_msg(b"X", b""))
            except OSError:
                pass
            self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(url: str | None = None) -> Connection:
    return Connection(url)


_local = threading.local()


def get_db() -> Connection:
    """This thread's connection to DATABASE_URL, opened on first use (and again if DATABASE_URL
    changed or the connection was closed)."""
    url = os.environ.get("DATABASE_URL", "")
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed or getattr(_local, "url", None) != url:
        if conn is not None:
            conn.close()
        conn = _local.conn = Connection(url)
        _local.url = url
    return conn


def close_db() -> None:
    """Closes this thread's connection, if any."""
    conn = getattr(_local, "conn", None)
    if conn is not None:
        conn.close()
        _local.conn = None
