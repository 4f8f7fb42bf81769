"""Passing requests on to ComfyUI: streamed uploads, websockets closing both ways, a backend that is down."""

import asyncio
import hashlib
import os
import time

import pytest
import requests

aiohttp = pytest.importorskip("aiohttp")
from fastsd.webui.comfyui.login_proxy import make_app  # noqa: E402
from tests.webui.comfyui.helpers import PASSWORD, USER, assert_secure_headers, basic, websocket  # noqa: E402
from tests.webui.comfyui.stand_in import free_port  # noqa: E402


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


def test_backend_down_is_a_short_502_and_health_says_so(servers):
    url = servers.serve(make_app(f"http://127.0.0.1:{free_port()}", USER, PASSWORD))
    answer = requests.get(url + "/object_info", auth=(USER, PASSWORD))
    assert answer.status_code == 502 and "not answering" in answer.text and "Traceback" not in answer.text
    assert_secure_headers(answer)
    assert websocket(url, auth=(USER, PASSWORD))[0] == 502
    health = requests.get(url + "/fastsd/health")
    assert health.status_code == 503
    assert_secure_headers(health)
