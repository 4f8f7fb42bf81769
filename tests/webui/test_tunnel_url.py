"""Tunnel URL discovery on captured real output: cloudflared, localtunnel, gradio, the ngrok agent API."""

from __future__ import annotations

import json

import pytest

from fastsd.webui.tunnel_url import discover_url, http_answers, url_from_log, url_from_ngrok_api

# docker compose logs of a cloudflared quick tunnel (stderr, prefixed by compose).
CLOUDFLARED_LOG = """\
cloudflared-1  | 2026-11-28T10:12:45Z INF Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee, are subject to the Cloudflare Online Services Terms of Use (https://www.cloudflare.com/website-terms/), and Cloudflare reserves the right to investigate your use of Tunnels for violations of such terms. If you intend to use Tunnels in production you should use a pre-created named tunnel by following: https://developers.cloudflare.com/cloudflare-one/connections/connect-apps
cloudflared-1  | 2026-11-28T10:12:45Z INF Requesting new quick Tunnel on trycloudflare.com...
cloudflared-1  | 2026-11-28T10:12:49Z INF +--------------------------------------------------------------------------------------------+
cloudflared-1  | 2026-11-28T10:12:49Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |
cloudflared-1  | 2026-11-28T10:12:49Z INF |  https://gentle-river-ancient-sample.trycloudflare.com                                     |
cloudflared-1  | 2026-11-28T10:12:49Z INF +--------------------------------------------------------------------------------------------+
cloudflared-1  | 2026-11-28T10:12:49Z INF Cannot determine default configuration path. No file [config.yml config.yaml] in [~/.cloudflared ~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared /usr/local/etc/cloudflared]
cloudflared-1  | 2026-11-28T10:12:49Z INF Version 2025.11.1 (Checksum 5c2a0f0e)
cloudflared-1  | 2026-11-28T10:12:50Z INF Registered tunnel connection connIndex=0 connection=8b1f location=fra08 protocol=quic
"""
CLOUDFLARED_FAILED = """\
cloudflared-1  | 2026-11-28T10:12:45Z INF Requesting new quick Tunnel on trycloudflare.com...
cloudflared-1  | 2026-11-28T10:12:46Z ERR Error unmarshaling QuickTunnel response: error="invalid character 'e' looking for beginning of value" status_code="429 Too Many Requests"
cloudflared-1  | failed to unmarshal quick Tunnel: Post "https://api.trycloudflare.com/tunnel": invalid character
"""
LOCALTUNNEL_LOG = """\
localtunnel-1  | npm WARN exec The following package was not found and will be installed: localtunnel@2.0.2
localtunnel-1  | your url is: https://odd-walls-sing.loca.lt
"""
GRADIO_LOG = """\
webui-1  | Running on local URL:  http://0.0.0.0:7860
webui-1  | Running on public URL: https://0123abcd4567ef89.gradio.live
webui-1  |
webui-1  | This share link expires in 72 hours.
"""
NGROK_TUNNELS = {
    "tunnels": [
        {"name": "command_line (http)", "ID": "a1", "uri": "/api/tunnels/command_line%20%28http%29",
         "public_url": "http://1a2b-203-0-113-7.ngrok-free.app", "proto": "http",
         "config": {"addr": "http://webui:7860", "inspect": True}},
        {"name": "command_line", "ID": "b2", "uri": "/api/tunnels/command_line",
         "public_url": "https://1a2b-203-0-113-7.ngrok-free.app", "proto": "https",
         "config": {"addr": "http://webui:7860", "inspect": True},
         "metrics": {"conns": {"count": 0}, "http": {"count": 0}}},
    ],
    "uri": "/api/tunnels",
}


@pytest.mark.parametrize("kind, log, expected", [
    ("cloudflared", CLOUDFLARED_LOG, "https://gentle-river-ancient-sample.trycloudflare.com"),
    ("cloudflared", CLOUDFLARED_FAILED, None),
    ("cloudflared", "", None),
    ("localtunnel", LOCALTUNNEL_LOG, "https://odd-walls-sing.loca.lt"),
    ("localtunnel", "localtunnel-1  | npm WARN exec ...\n", None),
    ("gradio", GRADIO_LOG, "https://0123abcd4567ef89.gradio.live"),
])
def test_url_from_captured_logs(kind, log, expected):
    assert url_from_log(kind, log) == expected


def test_the_latest_cloudflared_url_wins():
    restarted = CLOUDFLARED_LOG + CLOUDFLARED_LOG.replace("gentle-river-ancient-sample", "second-run-words-here")
    assert url_from_log("cloudflared", restarted) == "https://second-run-words-here.trycloudflare.com"


def test_ngrok_agent_api(server):
    api = server({"/api/tunnels": (200, json.dumps(NGROK_TUNNELS).encode())})
    assert url_from_ngrok_api(api.url) == "https://1a2b-203-0-113-7.ngrok-free.app"
    assert discover_url("ngrok", lambda: "", api.url, timeout=1) == "https://1a2b-203-0-113-7.ngrok-free.app"


def test_ngrok_api_without_tunnels_or_down(server):
    api = server({"/api/tunnels": (200, b'{"tunnels": [], "uri": "/api/tunnels"}')})
    assert url_from_ngrok_api(api.url) is None
    assert discover_url("ngrok", lambda: "", api.url, timeout=0.05, interval=0.01) is None
    assert url_from_ngrok_api("http://127.0.0.1:9") is None


def test_discovery_waits_for_the_line_to_appear():
    outputs = iter(["", CLOUDFLARED_LOG.splitlines()[0], CLOUDFLARED_LOG])
    assert discover_url("cloudflared", lambda: next(outputs), "", timeout=10, interval=0.01) == \
        "https://gentle-river-ancient-sample.trycloudflare.com"


def test_http_answers(server):
    ui = server({"/": (200, b"ok"), "/locked": (401, b"")})
    assert http_answers(ui.url + "/") and http_answers(ui.url + "/locked")
    assert not http_answers(server({"/": (502, b"")}).url + "/")
    assert not http_answers("http://127.0.0.1:9/")
