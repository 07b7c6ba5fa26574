"""The invoices application. `python3 -m invoices.app` serves it on $PORT (default 8000) with a
thread per request; production runs the same WSGI application with 4 threads per worker process.
"""

from __future__ import annotations

import os
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server

from . import listing, payments
from .web import App


def create_app() -> App:
    app = App()
    app.register_blueprint(listing.bp)
    app.register_blueprint(payments.bp)
    return app


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    with make_server("127.0.0.1", port, create_app(), server_class=ThreadingWSGIServer) as server:
        print(f"invoices listening on http://127.0.0.1:{port}")
        server.serve_forever()
