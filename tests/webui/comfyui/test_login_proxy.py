"""The login in front of ComfyUI, end to end: a real proxy before a real stand-in on 127.0.0.1."""

import asyncio
import base64
import hashlib
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

aiohttp = pytest.importorskip("aiohttp")
from fastsd.login_throttle import LoginThrottle  # noqa: E402
from fastsd.webui.comfyui.login_guard import COOKIE  # noqa: E402
from fastsd.webui.comfyui.login_proxy import make_app, run_login_proxy  # noqa: E402
from tests.webui.comfyui.stand_in import PAGE, VIEW_BYTES, free_port  # noqa: E402

USER, PASSWORD = "admin", "a-long-test-password"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml"}
GUARDED = [("GET", "/"), ("GET", "/ws?clientId=abc"), ("POST", "/prompt"), ("GET", "/view?filename=a.png"),
           ("POST", "/upload/image"), ("GET", "/api/userdata?dir=workflows"), ("GET", "/internal/logs"),
           ("GET", "/userdata"), ("GET", "/extensions"), ("GET", "/object_info"), ("GET", "/history/p-1"),
           ("DELETE", "/anything/else"), ("GET", "/fastsd/other"),
           # The open paths with a method they do not serve fall through to ComfyUI: guarded too.
           ("POST", "/fastsd/health"), ("PUT", "/fastsd/login"), ("DELETE", "/fastsd/logout"),
           ("GET", "/fastsd/login/"), ("GET", "/fastsd/health/")]
SECURITY = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


@pytest.fixture
def proxy(servers, backend):
    """The proxy's URL in front of the stand-in (a quick throttle so its tests wait little)."""
    def start(throttle=None, **kwargs):
        throttle = throttle or LoginThrottle(base=0.3, cap=1.0, global_per_minute=1000)
        return servers.serve(make_app(backend[0], USER, PASSWORD, throttle=throttle, **kwargs))
    return start


def log_in(url: str, next_path: str = "/") -> requests.Session:
    """A browser session that logged in through the form."""
    browser = requests.Session()
    answer = browser.post(url + "/fastsd/login", data={"user": USER, "password": PASSWORD, "next": next_path},
                          allow_redirects=False)
    assert answer.status_code == 303, answer.text
    return browser


def requests_seen(backend) -> list:
    """The requests that reached the stand-in (not its notes of closed websockets)."""
    return [entry for entry in backend[1] if entry[0] != "CLOSED"]


def basic(user=USER, password=PASSWORD) -> dict:
    """An HTTP Basic Authorization header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def assert_secure_headers(answer):
    for name, value in SECURITY.items():
        assert answer.headers.get(name) == value, (name, answer.status_code, answer.request.url)


def websocket(url: str, *, cookie=None, auth=None, origin=None, exchange=True):
    """Open the proxy's /ws; returns (status, frames received, echoes) or the refused handshake's status."""
    async def talk():
        headers = {"Origin": origin} if origin else {}
        if auth:
            headers.update(basic(*auth))
        cookies = {COOKIE: cookie} if cookie else None
        async with aiohttp.ClientSession(cookies=cookies) as session:
            try:
                ws = await session.ws_connect(url.replace("http", "ws") + "/ws?clientId=abc", headers=headers)
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status, None, None
            async with ws:
                first, second = await ws.receive(timeout=5), await ws.receive(timeout=5)
                echoes = None
                if exchange:
                    await ws.send_str("hello")
                    await ws.send_bytes(b"\x01\x02binary")
                    echoes = [(await ws.receive(timeout=5)).data, (await ws.receive(timeout=5)).data]
                return 101, [(first.type, first.data), (second.type, second.data)], echoes
    return asyncio.run(talk())


@pytest.mark.parametrize("method,path", GUARDED)
def test_every_route_refuses_without_a_login(proxy, backend, method, path):
    url = proxy()
    answer = requests.request(method, url + path, headers=JSON, allow_redirects=False)
    assert answer.status_code == 401
    assert "curl -u" in answer.json()["hint"] and "/fastsd/login" in answer.json()["hint"]
    assert answer.headers["WWW-Authenticate"].startswith('Basic realm="fastsd"')
    assert_secure_headers(answer)
    assert backend[1] == []


def test_a_page_load_without_login_goes_to_the_login_form(proxy, backend):
    url = proxy()
    answer = requests.get(url + "/view?filename=a.png&type=output", headers=HTML, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/fastsd/login?next=%2Fview%3Ffilename%3Da.png%26type%3Doutput"
    assert_secure_headers(answer)
    form = requests.get(url + answer.headers["Location"])
    assert form.status_code == 200 and 'name="password"' in form.text and 'type="password"' in form.text
    assert 'value="/view?filename=a.png&amp;type=output"' in form.text
    # Self-contained: no script, no asset from anywhere else.
    assert "<script" not in form.text and not re.search(r'(src|href)="(https?:)?//', form.text)
    assert_secure_headers(form)
    assert backend[1] == []


def test_websocket_handshake_needs_a_login_and_our_own_origin(proxy, backend):
    url = proxy()
    browser = log_in(url)
    cookie = browser.cookies[COOKIE]
    assert websocket(url)[0] == 401
    assert websocket(url, auth=(USER, "wrong-password"))[0] == 401
    assert websocket(url, cookie=cookie, origin="https://evil.example")[0] == 403
    assert websocket(url, auth=(USER, PASSWORD), origin="http://evil.example:7860")[0] == 403
    assert not [path for _, path, _ in backend[1] if path == "/ws"]


def test_each_side_of_a_websocket_closes_when_the_other_does(proxy, backend):
    url = proxy()

    async def talk(last_words):
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url.replace("http", "ws") + "/ws?clientId=abc", headers=basic())
            await ws.receive(timeout=5), await ws.receive(timeout=5)
            if last_words:
                await ws.send_str(last_words)
                closing = await ws.receive(timeout=5)
                return closing.type, ws.close_code
            await ws.close()
            return None, ws.close_code

    assert asyncio.run(talk("close please")) == (aiohttp.WSMsgType.CLOSE, 4000)
    assert asyncio.run(talk(None)) == (None, 1000)
    deadline = time.monotonic() + 5
    while len([entry for entry in backend[1] if entry[0] == "CLOSED"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len([entry for entry in backend[1] if entry[0] == "CLOSED"]) == 2


def test_browser_logs_in_and_uses_page_prompt_and_websocket(proxy, backend):
    url = proxy()
    host = url.removeprefix("http://")
    browser = requests.Session()
    answer = browser.post(url + "/fastsd/login", data={"user": USER, "password": PASSWORD, "next": "/?tab=queue"},
                          allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["Location"] == "/?tab=queue"
    set_cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Max-Age=43200" in set_cookie
    assert "Secure" not in set_cookie  # plain http on 127.0.0.1: a Secure cookie would never come back
    assert_secure_headers(answer)

    page = browser.get(url + "/", headers=HTML)
    assert page.status_code == 200 and page.text == PAGE
    assert_secure_headers(page)
    browser.cookies.set("comfy_setting", "kept")
    queued = browser.post(url + "/prompt", json={"prompt": {"3": {"class_type": "KSampler"}}, "client_id": "abc"},
                          headers={"Origin": f"http://{host}"})
    assert queued.status_code == 200, queued.text
    assert queued.json() == {"prompt_id": "p-1", "received": {"prompt": {"3": {"class_type": "KSampler"}},
                                                              "client_id": "abc"}}
    status, frames, echoes = websocket(url, cookie=browser.cookies[COOKIE], origin=f"http://{host}")
    assert status == 101
    assert frames == [(aiohttp.WSMsgType.TEXT, '{"type": "status", "clientId": "abc"}'),
                      (aiohttp.WSMsgType.BINARY, b"\x00\x00\x00\x01preview-image-bytes")]
    assert echoes == ["echo:hello", b"echo:\x01\x02binary"]

    # What ComfyUI saw: no login, no fastsd cookie, its own Origin, where the request came from.
    backend_url = backend[0].removeprefix("http://")
    for _, _, headers in requests_seen(backend):
        assert "Authorization" not in headers
        assert COOKIE not in headers.get("Cookie", "")
        assert headers["Host"] == backend_url
        assert headers["X-Forwarded-Host"] == host and headers["X-Forwarded-For"] == "127.0.0.1"
        if "Origin" in headers:
            assert headers["Origin"] == backend[0]
    prompt_headers = next(headers for _, path, headers in backend[1] if path == "/prompt")
    assert prompt_headers["Cookie"] == "comfy_setting=kept"


@pytest.mark.parametrize("trusted", [("127.0.0.1", "::1"), ()])
def test_the_cookie_is_secure_behind_an_https_tunnel(proxy, trusted):
    url = proxy(trusted_proxies=trusted)  # a tunnel in its own container is no trusted peer, yet says https
    answer = requests.post(url + "/fastsd/login", data={"user": USER, "password": PASSWORD},
                           headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)
    assert answer.status_code == 303 and "Secure" in answer.headers["Set-Cookie"]


def test_api_clients_use_basic_auth(proxy, backend):
    url = proxy(LoginThrottle(base=0.0, cap=0.0, global_per_minute=1000))  # no wait between guesses here
    info = requests.get(url + "/object_info", auth=(USER, PASSWORD))
    assert info.status_code == 200 and info.json() == {"path": "/object_info", "raw": "/object_info"}
    api = requests.get(url + "/api/view?filename=x%20y%2Bz.png&subfolder=a%2Fb", auth=(USER, PASSWORD))
    assert api.json() == {"path": "/api/view", "raw": "/api/view?filename=x%20y%2Bz.png&subfolder=a%2Fb"}
    image = requests.get(url + "/view?filename=a.png", auth=(USER, PASSWORD))
    assert image.status_code == 200 and image.content == VIEW_BYTES
    assert_secure_headers(image)
    wrong = requests.get(url + "/object_info", auth=(USER, "not-the-password"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "wrong user or password"
    assert requests.get(url + "/object_info", auth=("root", PASSWORD)).status_code == 401
    assert websocket(url, auth=(USER, PASSWORD), exchange=False)[0] == 101
    assert all("Authorization" not in headers for _, _, headers in backend[1])
    assert len(requests_seen(backend)) == 4  # the refused ones never reached ComfyUI


def test_logout_revokes_the_session_on_the_server(proxy, backend):
    url = proxy()
    browser = log_in(url)
    old = browser.cookies[COOKIE]
    assert browser.get(url + "/userdata", headers=JSON).status_code == 200
    out = browser.get(url + "/fastsd/logout", allow_redirects=False)
    assert out.status_code == 303 and out.headers["Location"] == "/fastsd/login"
    assert f'{COOKIE}=""' in out.headers["Set-Cookie"] or "Max-Age=0" in out.headers["Set-Cookie"]
    again = requests.get(url + "/userdata", headers=JSON, cookies={COOKIE: old})
    assert again.status_code == 401
    # A stale cookie means a browser: no Basic challenge, so the page's fetches raise no native dialog.
    assert "WWW-Authenticate" not in again.headers
    page = requests.get(url + "/", headers=HTML, cookies={COOKIE: old}, allow_redirects=False)
    assert page.status_code == 302 and page.headers["Location"].startswith("/fastsd/login")
    assert requests.get(url + "/userdata", cookies={COOKIE: "made-up"}, headers=JSON).status_code == 401


def test_a_20_mb_upload_arrives_intact(proxy, backend):
    url = proxy()
    data = os.urandom(20 * 1024 * 1024)
    answer = requests.post(url + "/upload/image", auth=(USER, PASSWORD),
                           files={"image": ("big.png", data, "image/png")}, data={"overwrite": "true"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def chunks():  # no Content-Length: the proxy passes the body on as it comes
        for start in range(0, len(data), 1 << 20):
            yield data[start:start + (1 << 20)]
    body = b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"c.png\"\r\n\r\n"
    streamed = requests.post(url + "/upload/image", auth=(USER, PASSWORD),
                             data=iter([body, *chunks(), b"\r\n--b--\r\n"]),
                             headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert streamed.json() == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_an_upload_is_passed_on_while_it_is_still_coming(proxy, first_bytes):
    url = proxy()
    reached = []

    def body():  # holds back the end of the upload until ComfyUI has its beginning
        yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"s.png\"\r\n\r\n"
        yield os.urandom(1 << 20)
        reached.append(first_bytes.wait(10))
        yield os.urandom(1 << 20) + b"\r\n--b--\r\n"
    answer = requests.post(url + "/upload/image", auth=(USER, PASSWORD), data=body(),
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert reached == [True], "the proxy held the upload back until it had all of it"
    assert answer.json()["size"] == 2 << 20


def test_wrong_passwords_are_throttled_and_the_right_one_works_after_the_wait(proxy, caplog):
    url = proxy(LoginThrottle(base=0.4, cap=1.0, global_per_minute=1000))
    caplog.set_level(logging.WARNING, logger="fastsd.login")
    wrong = requests.post(url + "/fastsd/login", data={"user": USER, "password": "guess-1"}, allow_redirects=False)
    assert wrong.status_code == 401 and "wrong user or password" in wrong.text
    started = time.monotonic()
    for attempt in (
        lambda: requests.post(url + "/fastsd/login", data={"user": USER, "password": PASSWORD}, allow_redirects=False),
        lambda: requests.get(url + "/object_info", auth=(USER, PASSWORD)),
    ):
        held = attempt()
        assert held.status_code == 429 and int(held.headers["Retry-After"]) >= 1
        assert_secure_headers(held)
    assert requests.get(url + "/object_info", auth=(USER, "guess-2")).status_code == 429
    time.sleep(max(0.0, 0.45 - (time.monotonic() - started)))
    assert requests.get(url + "/object_info", auth=(USER, PASSWORD)).status_code == 200
    assert requests.get(url + "/object_info", auth=(USER, "guess-3")).status_code == 401
    assert requests.get(url + "/object_info", auth=(USER, PASSWORD)).status_code == 429
    assert [r for r in caplog.records if "failed login from 127.0.0.1" in r.getMessage()]
    time.sleep(0.45)
    assert log_in(url).cookies[COOKIE]


@pytest.mark.parametrize("trusted,second", [(("127.0.0.1", "::1"), 200), (("127.0.0.0/8",), 200),
                                            (("10.0.0.0/8",), 429), ((), 429)])
def test_forwarded_for_counts_only_from_a_proxy_on_this_machine(proxy, trusted, second):
    url = proxy(LoginThrottle(base=30, cap=30, global_per_minute=1000), trusted_proxies=trusted)
    first = requests.get(url + "/object_info", auth=(USER, "guess"), headers={"X-Forwarded-For": "203.0.113.5"})
    assert first.status_code == 401
    other = requests.get(url + "/object_info", auth=(USER, PASSWORD), headers={"X-Forwarded-For": "203.0.113.6"})
    assert other.status_code == second


def test_changes_from_another_site_are_refused(proxy, backend):
    url = proxy()
    browser = log_in(url)
    for origin in ("https://evil.example", "http://127.0.0.1.evil.example", "null"):
        answer = browser.post(url + "/prompt", json={"prompt": {}}, headers={"Origin": origin})
        assert answer.status_code == 403, origin
        assert_secure_headers(answer)
    by_referer = browser.post(url + "/prompt", json={}, headers={"Referer": "https://evil.example/page"})
    assert by_referer.status_code == 403
    forged_login = requests.post(url + "/fastsd/login", data={"user": USER, "password": PASSWORD},
                                 headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert forged_login.status_code == 403 and COOKIE not in forged_login.cookies
    assert not [path for _, path, _ in backend[1] if path == "/prompt"]
    assert browser.get(url + "/object_info", headers={"Origin": "https://evil.example"}).status_code == 200


def test_the_browsers_sec_fetch_site_decides_when_a_tunnel_rewrote_host(proxy, backend):
    url = proxy()
    browser = log_in(url)
    public = {"Origin": "https://name.trycloudflare.com"}  # the page's origin; Host is the proxy's own
    assert browser.post(url + "/prompt", json={}, headers=public).status_code == 403
    same = browser.post(url + "/prompt", json={"prompt": {}}, headers={**public, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 200
    host = url.removeprefix("http://")
    for verdict in ("cross-site", "same-site"):
        forged = browser.post(url + "/prompt", json={}, headers={"Origin": f"http://{host}", "Sec-Fetch-Site": verdict})
        assert forged.status_code == 403
    tunnel = browser.post(url + "/prompt", json={"prompt": {}},
                          headers={**public, "X-Forwarded-Host": "name.trycloudflare.com"})
    assert tunnel.status_code == 200  # a trusted proxy (127.0.0.1 here) names the public host


def test_a_bad_trusted_proxy_is_refused_before_serving(backend, tmp_path):
    from fastsd.errors import FastsdError

    with pytest.raises(FastsdError, match="'tunnel' is not an IP address"):
        make_app(backend[0], USER, PASSWORD, trusted_proxies=("tunnel",))


@pytest.mark.parametrize("next_path", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                       "http:/evil.example", "javascript:alert(1)", "/\tx", "/fastsd/login"])
def test_login_never_redirects_to_another_site(proxy, next_path):
    url = proxy()
    answer = requests.post(url + "/fastsd/login", data={"user": USER, "password": PASSWORD, "next": next_path},
                           allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    form = requests.get(url + "/fastsd/login", params={"next": next_path})
    assert 'name="next" value="/"' in form.text


def test_backend_down_is_a_short_502_and_health_says_so(servers):
    url = servers.serve(make_app(f"http://127.0.0.1:{free_port()}", USER, PASSWORD))
    answer = requests.get(url + "/object_info", auth=(USER, PASSWORD))
    assert answer.status_code == 502 and "not answering" in answer.text and "Traceback" not in answer.text
    assert_secure_headers(answer)
    assert websocket(url, auth=(USER, PASSWORD))[0] == 502
    health = requests.get(url + "/fastsd/health")
    assert health.status_code == 503
    assert_secure_headers(health)


def test_health_answers_without_login_and_without_data(proxy, backend):
    url = proxy()
    health = requests.get(url + "/fastsd/health")
    assert health.status_code == 200 and health.text == "ok\n"
    assert_secure_headers(health)


@pytest.mark.parametrize("backend_url", ["127.0.0.1:8188", "ftp://x", "http://127.0.0.1:8188/comfy", ""])
def test_a_bad_backend_is_refused_before_serving(backend_url):
    from fastsd.errors import FastsdError

    with pytest.raises(FastsdError, match="backend"):
        make_app(backend_url, USER, PASSWORD)


def test_run_login_proxy_serves_until_its_loop_stops(backend):
    port, started = free_port(), threading.Event()
    loops = []

    def ready():
        loops.append(asyncio.get_running_loop())
        started.set()

    thread = threading.Thread(target=run_login_proxy, args=("127.0.0.1", port, backend[0], USER, PASSWORD),
                              kwargs={"ready": ready}, daemon=True)
    thread.start()
    assert started.wait(10)
    assert requests.get(f"http://127.0.0.1:{port}/object_info", auth=(USER, PASSWORD)).status_code == 200
    loops[0].call_soon_threadsafe(loops[0].stop)
    thread.join(10)
    assert not thread.is_alive()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=2)


def proxy_command(*args):
    return [sys.executable, "-m", "fastsd.webui.comfyui.login_proxy", *args]


def test_module_entry_reads_the_password_from_the_environment_and_stops_on_sigterm(backend, tmp_path):
    port = free_port()
    env = {**os.environ, "FASTSD_WEB_PASSWORD": PASSWORD, "FASTSD_DATA": str(tmp_path)}
    child = subprocess.Popen(proxy_command("--listen", f"127.0.0.1:{port}", "--backend", backend[0]), env=env,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stderr.readline()
        assert f"listening on http://127.0.0.1:{port}" in line and backend[0] in line
        assert PASSWORD not in line
        assert requests.get(f"http://127.0.0.1:{port}/object_info", auth=(USER, PASSWORD)).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/object_info").status_code == 401
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(15) == 0


def test_module_entry_uses_the_credentials_stored_on_the_volume(backend, tmp_path):
    from fastsd.layout import DataRoot
    from fastsd.webui.auth import write_credentials

    write_credentials(DataRoot(tmp_path).webui_auth, "alice", "stored-password-1")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FASTSD_WEB_PASSWORD"}
    child = subprocess.Popen(proxy_command("--listen", f"127.0.0.1:{port}", "--backend", backend[0],
                                           "--data", str(tmp_path)), env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert "user 'alice'" in child.stderr.readline()
        url = f"http://127.0.0.1:{port}/object_info"
        assert requests.get(url, auth=("alice", "stored-password-1")).status_code == 200
    finally:
        child.send_signal(signal.SIGTERM)
        assert child.wait(15) == 0


@pytest.mark.parametrize("args,env,message", [
    (["--listen", "7860"], {"FASTSD_WEB_PASSWORD": PASSWORD}, "--listen '7860' is not HOST:PORT"),
    (["--backend", "localhost:8188"], {"FASTSD_WEB_PASSWORD": PASSWORD}, "is not an http URL"),
    ([], {}, "no web UI password"),
    (["--trust-proxy", "tunnel"], {"FASTSD_WEB_PASSWORD": PASSWORD}, "'tunnel' is not an IP address"),
    (["--user", "a b"], {"FASTSD_WEB_PASSWORD": PASSWORD}, "invalid web UI user"),
])
def test_module_entry_refuses_bad_input_before_serving(tmp_path, args, env, message):
    environ = {k: v for k, v in os.environ.items() if k != "FASTSD_WEB_PASSWORD"}
    environ.update(env, FASTSD_DATA=str(tmp_path))
    done = subprocess.run(proxy_command("--listen", f"127.0.0.1:{free_port()}", *args), env=environ,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert message in done.stderr and "hint:" in done.stderr
