"""A small Flask-like web layer on the standard library: blueprints with routes, the current
`request`, `jsonify` and `abort`, served as a WSGI application (see `invoices.app`). It keeps the
subset of Flask's API this service uses. This file is infrastructure, not one of the defects.
"""

from __future__ import annotations

import json
import re
import threading
import traceback
from http import HTTPStatus
from urllib.parse import parse_qs

__all__ = ["App", "Blueprint", "HTTPError", "Request", "Response", "abort", "jsonify", "request"]


class Response:
    def __init__(self, body: bytes | str = b"", status: int = 200, content_type: str = "text/plain"):
        self.body = body.encode() if isinstance(body, str) else body
        self.status_code = status
        self.headers = {"Content-Type": content_type}

    def get_json(self):
        return json.loads(self.body) if self.body else None


class HTTPError(Exception):
    def __init__(self, status: int, message: str = ""):
        super().__init__(message or HTTPStatus(status).phrase)
        self.status = status
        self.message = message or HTTPStatus(status).phrase


def abort(status: int, message: str = ""):
    raise HTTPError(status, message)


def jsonify(obj) -> Response:
    return Response(json.dumps(obj), 200, "application/json")


class Headers:
    def __init__(self, pairs: dict[str, str]):
        self._h = {k.lower(): v for k, v in pairs.items()}

    def get(self, name: str, default=None):
        return self._h.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._h[name.lower()]

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._h


class Args(dict):
    def get(self, key, default=None, type=None):
        if key not in self:
            return default
        value = self[key]
        if type is None:
            return value
        try:
            return type(value)
        except ValueError:
            return default


class Request:
    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        self.path = environ.get("PATH_INFO", "/") or "/"
        self.args = Args({k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()})
        headers = {k[5:].replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["CONTENT-TYPE"] = environ["CONTENT_TYPE"]
        self.headers = Headers(headers)
        self._body: bytes | None = None

    def get_data(self) -> bytes:
        if self._body is None:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
            stream = self.environ.get("wsgi.input")
            self._body = stream.read(length) if stream is not None and length > 0 else b""
        return self._body

    def get_json(self):
        data = self.get_data()
        return json.loads(data) if data else None


class _RequestProxy:
    """The request being handled by the current thread, like flask.request."""

    _local = threading.local()

    def _get(self) -> Request:
        current = getattr(self._local, "request", None)
        if current is None:
            raise RuntimeError("no request is being handled")
        return current

    def __getattr__(self, name):
        return getattr(self._get(), name)


request = _RequestProxy()

_CONVERTERS = {"int": (r"\d+", int), "str": (r"[^/]+", str), "path": (r".+", str)}


class Blueprint:
    def __init__(self, name: str, import_name: str = ""):
        self.name = name
        self.routes: list[tuple[str, re.Pattern, dict, object]] = []

    def route(self, pattern: str, methods=("GET",)):
        converters: dict[str, object] = {}

        def part(m):
            kind, name = (m.group(1) or "str"), m.group(2)
            regex, conv = _CONVERTERS[kind]
            converters[name] = conv
            return f"(?P<{name}>{regex})"

        regex = re.compile("^" + re.sub(r"<(?:(\w+):)?(\w+)>", part, pattern) + "$")

        def decorator(func):
            for method in methods:
                self.routes.append((method.upper(), regex, converters, func))
            return func

        return decorator

    def get(self, pattern: str):
        return self.route(pattern, ("GET",))

    def post(self, pattern: str):
        return self.route(pattern, ("POST",))


def _to_response(result) -> Response:
    status = None
    if isinstance(result, tuple):
        result, status = result[0], result[1]
    if isinstance(result, Response):
        response = result
    elif isinstance(result, (dict, list)):
        response = jsonify(result)
    else:
        response = Response(result or b"", 200)
    if status is not None:
        response.status_code = int(status)
    return response


class App:
    """A WSGI application: `app(environ, start_response)`."""

    def __init__(self):
        self.routes: list = []

    def register_blueprint(self, bp: Blueprint) -> None:
        self.routes.extend(bp.routes)

    def dispatch(self, req: Request) -> Response:
        allowed = False
        for method, regex, converters, func in self.routes:
            m = regex.match(req.path)
            if not m:
                continue
            allowed = True
            if method != req.method:
                continue
            kwargs = {k: converters[k](v) for k, v in m.groupdict().items()}
            try:
                return _to_response(func(**kwargs))
            except HTTPError as err:
                return Response(json.dumps({"error": err.message}), err.status, "application/json")
            except Exception:  # like Flask outside debug mode: log it, answer 500
                traceback.print_exc()
                return Response(json.dumps({"error": "internal server error"}), 500, "application/json")
        if allowed:
            return Response(json.dumps({"error": "method not allowed"}), 405, "application/json")
        return Response(json.dumps({"error": "not found"}), 404, "application/json")

    def __call__(self, environ, start_response):
        req = Request(environ)
        _RequestProxy._local.request = req
        try:
            response = self.dispatch(req)
        finally:
            _RequestProxy._local.request = None
        status = f"{response.status_code} {HTTPStatus(response.status_code).phrase}"
        headers = list(response.headers.items()) + [("Content-Length", str(len(response.body)))]
        start_response(status, headers)
        return [response.body]

    def test_client(self) -> "TestClient":
        return TestClient(self)


class TestClient:
    """Calls the application in-process: client.get("/path?x=1"), client.post(path, data, headers)."""

    def __init__(self, app: App):
        self.app = app

    def open(self, method: str, url: str, data: bytes | str = b"", headers: dict | None = None) -> Response:
        import io

        path, _, query = url.partition("?")
        body = data.encode() if isinstance(data, str) else data
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            environ["CONTENT_TYPE" if key == "CONTENT_TYPE" else "HTTP_" + key] = value
        captured = {}

        def start_response(status, response_headers):
            captured["status"] = int(status.split()[0])
            captured["headers"] = dict(response_headers)

        chunks = self.app(environ, start_response)
        response = Response(b"".join(chunks), captured["status"])
        response.headers = captured["headers"]
        return response

    def get(self, url: str, headers: dict | None = None) -> Response:
        return self.open("GET", url, headers=headers)

    def post(self, url: str, data: bytes | str = b"", headers: dict | None = None) -> Response:
        return self.open("POST", url, data, headers)
