"""A stand-in for `invokeai-web` (run as that script by the tests): the endpoints fastsd calls, on
the port of $INVOKEAI_ROOT/invokeai.yaml, with its users and models kept in memory."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

ROOT = Path(os.environ["INVOKEAI_ROOT"])
CONFIG = yaml.safe_load((ROOT / "invokeai.yaml").read_text())
ADMIN = ROOT / "fake-admin.json"  # the administrator outlives a restart, as in InvokeAI's database
STATE = {"admin": json.loads(ADMIN.read_text()) if ADMIN.is_file() else None, "models": [], "jobs": {}}
TOKEN = "fake-token"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        with open(ROOT / "fake-requests.log", "a") as log:
            log.write(f"{self.command} {self.path} {self.headers.get('Authorization', '-')}\n")

    def _send(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _authorized(self) -> bool:
        if CONFIG["multiuser"] and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"detail": "Not authenticated"})
            return False
        return True

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/api/v1/auth/status":
            return self._send(200, {"setup_required": CONFIG["multiuser"] and STATE["admin"] is None,
                                    "multiuser_enabled": CONFIG["multiuser"]})
        if not self._authorized():
            return None
        if url.path == "/api/v2/models/":
            return self._send(200, {"models": STATE["models"]})
        if url.path.startswith("/api/v2/models/install/"):
            return self._send(200, STATE["jobs"][int(url.path.rsplit("/", 1)[1])])
        return self._send(404, {"detail": "Not Found"})

    def do_POST(self):
        url = urlparse(self.path)
        body = self._body()
        if url.path == "/api/v1/auth/setup":
            if STATE["admin"] is not None:
                return self._send(400, {"detail": "Administrator account already configured"})
            STATE["admin"] = body
            ADMIN.write_text(json.dumps(body))
            return self._send(200, {"success": True})
        if url.path == "/api/v1/auth/login":
            admin = STATE["admin"] or {}
            if (body.get("email"), body.get("password")) != (admin.get("email"), admin.get("password")):
                return self._send(401, {"detail": "Incorrect email or password"})
            return self._send(200, {"token": TOKEN, "expires_in": 3600})
        if not self._authorized():
            return None
        if url.path == "/api/v2/models/install":
            query = parse_qs(url.query)
            source = query["source"][0]
            job_id = len(STATE["jobs"]) + 1
            if "refused-by-invokeai" in source:
                job = {"id": job_id, "status": "error", "error_reason": "Unable to determine model type",
                       "source": source}
            else:
                key = f"key-{job_id}"
                STATE["models"].append({"key": key, "path": source, "name": body["name"],
                                        "inplace": query["inplace"] == ["true"],
                                        "prediction_type": body.get("prediction_type")})
                (ROOT / "fake-models.json").write_text(json.dumps(STATE["models"]))
                job = {"id": job_id, "status": "running", "source": source, "config_out": {"key": key}}
            STATE["jobs"][job_id] = {**job, "status": job["status"] if job["status"] == "error" else "completed"}
            return self._send(201, job)
        return self._send(404, {"detail": "Not Found"})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(CONFIG["port"])), Handler)
    print(f"fake InvokeAI on {CONFIG['port']}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
