"""A local Nominatim (OpenStreetMap's geocoder) for geopy: /search in its JSON format.

It knows the addresses in PLACES (anything else is not found) and records the User-Agent of
every request, which Nominatim's usage policy requires to name the application.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from tests.fakes import ServedInThread

PLACES = {"1 Rue de Rivoli, Paris": (48.8556, 2.3522)}


class FakeNominatim(ServedInThread):
    def __init__(self) -> None:
        self.user_agents: list[str] = []
        self._lock = threading.Lock()
        nominatim = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                payload = json.dumps(nominatim._search(self.path, self.headers.get("User-Agent", ""))).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.domain = f"127.0.0.1:{self._server.server_port}"  # geopy's `domain`: host and port
        self._serve()

    def _search(self, path: str, user_agent: str) -> list[dict]:
        with self._lock:
            self.user_agents.append(user_agent)
        url = urlparse(path)
        address = parse_qs(url.query).get("q", [""])[0]
        place = PLACES.get(address)
        if place is None or url.path != "/search":
            return []
        return [{"lat": str(place[0]), "lon": str(place[1]), "display_name": address, "place_id": 1}]
