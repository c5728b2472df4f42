"""server.py: real HTTP requests (GET and JSON POST) against a server the test starts."""
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from chatbot.bot import Chatbot
from chatbot.server import make_server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUESTIONS = ["你好", "你是谁", "今天天气怎么样", "我想吃饭", "你喜欢音乐吗", "再见", "hello", "什么是人工智能"]


@pytest.fixture(scope="module")
def server(trained):
    d, _ = trained
    bot = Chatbot(os.path.join(d, "model.pt"), beam=2)
    srv = make_server(bot, "127.0.0.1", 0, max_input=50)  # port 0: any free port
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
