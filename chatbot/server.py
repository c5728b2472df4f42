"""HTTP chatbot server (chatbot-zh-torch7 `eval-server.lua`).

    python server.py --dataDir data/                  # http://127.0.0.1:8082
    curl 'http://127.0.0.1:8082/?text=你好'            # -> {"text": "你好", "reply": "..."}
    curl -d '{"text": "你好"}' http://127.0.0.1:8082/

The model is loaded once; each request decodes with its own local state, so concurrent requests
never see each other's. Every answer is JSON, errors too (4xx with {"error": ...}); every read from a
client is bounded by --timeout (408), so slow or silent clients cannot hold a thread for long.
"""
import json
import os
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import torch

from chatbot.bot import Chatbot
from common.cli import UserError, flag, options, parse, run
from common.device import get_device

MAX_LINE = 65536  # longest request line (URL) read, as http.server's


class _Server(ThreadingHTTPServer):
    # the default listen backlog of 5 overflowed at 16 concurrent clients: 1 in 20 waited a TCP retry (~1 s)
    request_queue_size = 128
    daemon_threads = True


@options
class ServerOpts:
    """Answer GET /?text=... and POST {"text": ...} with the model's reply as JSON."""
    dataDir: str = flag("data/", "folder that train.py wrote (model.pt)")
    model: str = flag("", "model file (default: DATADIR/model.pt)")
    host: str = flag("127.0.0.1", "address to listen on (0.0.0.0 = every interface)")
    port: int = flag(8082, "port (0 = any free port), as eval-server.lua", min=0, max=65535)
    beam: int = flag(1, "beam size (1 = greedy)", min=1)
    maxLength: int = flag(20, "at most this many tokens per reply", min=1)
    maxInputLength: int = flag(200, "longest accepted question, in characters", min=1)
    timeout: float = flag(10.0, "seconds a client may take to send its request (then 408)")
    threads: int = flag(0, "CPU threads for torch (0 = torch's default)", min=0)
    cuda: bool = flag(False, "use CUDA (same as -gpuid 0)")
    gpuid: int = flag(-1, "GPU id, -1 = CPU", min=-1)


def _percent_encode_raw(line: bytes) -> bytes:
    """curl sends `?text=你好` as raw UTF-8 bytes; http.server reads the request line as Latin-1 (and
    splits it at U+00A0/U+0085). Percent-encoding bytes >= 0x80 keeps them intact for parse_qs."""
    return re.sub(rb"[\x80-\xff]", lambda m: b"%%%02X" % m.group()[0], line)


class ChatHandler(BaseHTTPRequestHandler):
    bot = None  # set by make_server
    max_input = 200
    max_body = 64 * 1024
    timeout = 10.0  # socket timeout of every read (StreamRequestHandler applies it)

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (400 bad request line, 414, 431, 501 ...) as JSON too."""
        self.close_connection = True
        self._send(code, {"error": message or self.responses.get(code, ("error",))[0]})

    def _send(self, status, obj):
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        if self.request_version == "HTTP/0.9":  # a request line too broken to name a version
            self.request_version = "HTTP/1.0"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            if status >= 400:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True  # the client left: nothing to answer

    def handle_one_request(self):
        """http.server's, with raw UTF-8 URLs accepted and a timed-out read answered 408."""
        self.requestline, self.request_version, self.command = "", "HTTP/0.9", None
        try:
            line = self.rfile.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE:
                return self.send_error(414, f"URL longer than {MAX_LINE} bytes")
            if not line:
                self.close_connection = True
                return
            self.raw_requestline = _percent_encode_raw(line)
            if not self.parse_request():  # reads the headers; answers malformed ones itself
                return
            handler = getattr(self, f"do_{self.command}", None)
            if handler is None:
                return self.send_error(501, f"method {self.command} not supported; use GET or POST")
            handler()
            self.wfile.flush()
        except TimeoutError:
            self.send_error(408, f"request not received within {self.timeout:g} s")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _answer(self, text):
        if not isinstance(text, str) or not text.strip():
            return self._send(400, {"error": "give the question as ?text=... or a JSON body {\"text\": ...}"})
        if len(text) > self.max_input:
            return self._send(413, {"error": f"text longer than {self.max_input} characters"})
        self._send(200, {"text": text, "reply": self.bot.reply(text)})

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path not in ("/", ""):
            return self._send(404, {"error": f"no such path {url.path}; use /?text=..."})
        try:
            query = parse_qs(url.query, strict_parsing=False, errors="strict")
        except UnicodeDecodeError:
            return self._send(400, {"error": "text is not UTF-8"})
        self._answer(query.get("text", [""])[0])

    def do_POST(self):
        if urlsplit(self.path).path not in ("/", ""):
            return self._send(404, {"error": "no such path; POST to /"})
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._send(411, {"error": "Content-Length required"})
        if length < 0 or length > self.max_body:
            return self._send(413, {"error": f"body larger than {self.max_body} bytes"})
        body = self.rfile.read(length)  # a TimeoutError here becomes 408 in handle_one_request
        if len(body) < length:
            return self._send(400, {"error": f"body shorter than its Content-Length ({len(body)} < {length})"})
        try:
            obj = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self._send(400, {"error": "body is not UTF-8 JSON like {\"text\": \"你好\"}"})
        self._answer(obj.get("text") if isinstance(obj, dict) else None)

    def log_message(self, fmt, *args):  # one short line per request on stderr
        sys.stderr.write(f"{self.address_string()} {fmt % args}\n")


def make_server(bot, host="127.0.0.1", port=8082, max_input=200, timeout=10.0):
    """A ThreadingHTTPServer answering with `bot` (call serve_forever(); server_address has the port)."""
    handler = type("Handler", (ChatHandler,), {"bot": bot, "max_input": max_input, "timeout": timeout})
    server = _Server((host, port), handler)
    server.daemon_threads = True
    return server


def main(opt):
    if opt.threads > 0:
        torch.set_num_threads(opt.threads)
    if opt.timeout <= 0:
        raise UserError(f"--timeout {opt.timeout:g}: give a positive number of seconds")
    path = opt.model or os.path.join(opt.dataDir, "model.pt")
    if not os.path.exists(path):
        raise UserError(f"{path}: no model yet; train one first (python train.py --dataDir {opt.dataDir})")
    bot = Chatbot(path, get_device(0 if opt.cuda and opt.gpuid < 0 else opt.gpuid), opt.beam, opt.maxLength)
    bot.reply("你好")  # warm up (loads jieba's dictionary before the first request)
    try:
        server = make_server(bot, opt.host, opt.port, opt.maxInputLength, opt.timeout)
    except OSError as e:
        raise UserError(f"cannot listen on {opt.host}:{opt.port} ({e.strerror}); try another --port") from None
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}/?text=...", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    run(main, parse(ServerOpts))
