"""server.py: real HTTP requests (GET and JSON POST) against a server the test starts."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from chatbot.bot import Chatbot
from chatbot.server import make_server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 2.0  # the server's read timeout in these tests
QUESTIONS = ["你好", "你是谁", "今天天气怎么样", "我想吃饭", "你喜欢音乐吗", "再见", "hello", "什么是人工智能"]


@pytest.fixture(scope="module")
def server(trained):
    d, _ = trained
    bot = Chatbot(os.path.join(d, "model.pt"), beam=2)
    srv = make_server(bot, "127.0.0.1", 0, max_input=50, timeout=TIMEOUT)  # port 0: any free port
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", bot
    srv.shutdown()
    srv.server_close()


def request(url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode("utf-8"))


def test_get_and_post(server):
    url, bot = server
    status, obj = request(f"{url}/?text={urllib.parse.quote('你好')}")
    assert status == 200 and obj == {"text": "你好", "reply": bot.reply("你好")} and obj["reply"]
    status, obj2 = request(url + "/", json.dumps({"text": "你好"}).encode(), {"Content-Type": "application/json"})
    assert status == 200 and obj2 == obj


def test_bad_requests_get_4xx(server):
    url, _ = server
    assert request(f"{url}/")[0] == 400  # no text
    assert request(f"{url}/?text=")[0] == 400
    status, obj = request(f"{url}/?text={urllib.parse.quote('长' * 51)}")
    assert status == 413 and "50" in obj["error"]
    assert request(f"{url}/nowhere?text=hi")[0] == 404
    assert request(url, b"{not json")[0] == 400
    assert request(url, json.dumps({"question": "hi"}).encode())[0] == 400
    assert request(url, json.dumps(["hi"]).encode())[0] == 400
    assert request(url, "你好".encode("gbk"))[0] == 400
    assert request(f"{url}/?text=%FF%FE")[0] == 400  # not UTF-8


def test_concurrent_requests_do_not_mix(server):
    url, bot = server
    expected = {q: bot.reply(q) for q in QUESTIONS}
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda q: request(f"{url}/?text={urllib.parse.quote(q)}"), QUESTIONS * 4))
    for q, (status, obj) in zip(QUESTIONS * 4, results):
        assert status == 200 and obj["text"] == q and obj["reply"] == expected[q]


def test_server_command_starts_and_answers(trained):
    d, _ = trained
    p = subprocess.Popen([sys.executable, "-m", "chatbot.server", "--dataDir", str(d), "--port", "0",
                          "--threads", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), p.stderr.read() if not line else line
        port = int(line.split(":")[2].split("/")[0])
        status, obj = request(f"http://127.0.0.1:{port}/?text={urllib.parse.quote('你好')}")
        assert status == 200 and obj["reply"] == Chatbot(os.path.join(d, "model.pt")).reply("你好")
    finally:
        p.terminate()
        p.wait(timeout=30)


def raw(url, data: bytes, read_timeout=30):
    """Send bytes as they are (curl sends a raw UTF-8 URL); returns (status, JSON body)."""
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as s:
        s.sendall(data)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"application/json" in head, head
    return int(head.split()[1]), json.loads(body.decode("utf-8"))


def test_raw_utf8_urls_as_curl_sends_them(server):
    url, bot = server
    for q in ("你好", "谢谢"):  # 你好's UTF-8 holds 0xA0 and once made http.server answer 400
        status, obj = raw(url, f"GET /?text={q} HTTP/1.1\r\nHost: x\r\n\r\n".encode("utf-8"))
        assert status == 200 and obj == {"text": q, "reply": bot.reply(q)}


def test_every_error_is_json(server):
    url, _ = server
    status, obj = raw(url, b"GET /?text=" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n")
    assert status == 414 and "URL longer" in obj["error"]
    status, obj = raw(url, b"GARBAGE\r\n\r\n")
    assert status == 400 and obj["error"]
    status, obj = raw(url, b"DELETE / HTTP/1.1\r\n\r\n")
    assert status == 501 and "GET or POST" in obj["error"]
    status, obj = raw(url, b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab")  # then the client hangs up
    # (the server reads on until the client closes or the timeout: either way a JSON error)
    assert status in (400, 408) and obj["error"]


def test_slow_clients_get_408_and_do_not_block_others(server):
    url, bot = server
    host, port = url.split("//")[1].split(":")
    slow = []
    t0 = time.monotonic()
    for i in range(24):  # half promise a body they never send, half never finish their headers
        s = socket.create_connection((host, int(port)), timeout=30)
        s.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"text\"" if i % 2 else b"GET /?text=hi HTTP/1.1\r\n")
        slow.append(s)
    # meanwhile normal requests are answered
    status, obj = request(f"{url}/?text={urllib.parse.quote('你好')}")
    assert status == 200 and obj["reply"] == bot.reply("你好")
    for s in slow:
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
        s.close()
        assert reply.startswith(b"HTTP/1.0 408") and b"not received within" in reply, reply[:200]
    assert time.monotonic() - t0 < TIMEOUT + 30  # every read was bounded by the timeout
