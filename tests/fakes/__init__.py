"""Local servers that speak the providers' real protocols, for the real client libraries to call.

One module per outside service: apns (Apple Push, HTTP/2 over TLS), google (OAuth2, the Wallet
REST API, the save page, signed callbacks; `walletobjects` holds Google's schema checker),
push (a Web Push service), twilio (Twilio's REST API, checked against its OpenAPI description),
nominatim (the geocoder), webhook_receiver (an HTTPS receiver), loopback and worker (a message
provider and an outbox worker process for the crash tests), tls (a throwaway CA). Fixtures that
start them are in the conftest.py files."""

from __future__ import annotations

import threading

from werkzeug.serving import make_server


class ServedInThread:
    """A socket server (`self._server`) run in a daemon thread: start() and stop()."""

    _server = None

    def _serve(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class LocalServer(ServedInThread):
    """A WSGI app served over HTTP on 127.0.0.1 in a thread (a fresh port each time)."""

    def __init__(self, wsgi_app) -> None:
        self._server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._serve()
