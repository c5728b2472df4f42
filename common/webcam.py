"""A live camera page: the browser's camera in, a model's boxes and captions drawn over the live picture.

    def predict(rgb):                       # H x W x 3 uint8 -> {"captions": [...], "boxes": [[x, y, w, h], ...]}
        ...
    webcam.serve(predict, title="neuraltalk", port=8000)   # python neuraltalk/webcam.py -model X

The page (getUserMedia) sends a JPEG of the current frame, waits for its answer, draws it and sends the
next one; the frame rate it shows is answers per second. The server holds one frame at a time for the
model: a frame that arrives while another is still waiting its turn replaces it, and the one replaced is
answered at once with `{"dropped": true}`, so with any number of tabs or a model slower than the camera
the latency stays one model call (plus the one running), never a queue. Frames are bounded in bytes
(`max_bytes`) and in pixels (longest side `max_side`, larger frames are scaled down first); nothing is
written to disk. It binds 127.0.0.1 unless told otherwise, and warns when it is.
"""
import io
import json
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_BYTES = 4 << 20

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title} - live</title>
<style>
 body {{ font-family: sans-serif; background: #111; color: #eee; margin: 1em; }}
 #stage {{ position: relative; display: inline-block; }}
 #overlay {{ position: absolute; left: 0; top: 0; }}
 #captions {{ font-size: 20px; margin-top: .5em; min-height: 3em; }}
 #status {{ color: #aaa; }}
</style></head>
<body>
<h2>{title}: live camera</h2>
<div id="stage"><video id="video" autoplay muted playsinline></video><canvas id="overlay"></canvas></div>
<div id="captions"></div>
<div id="status">starting the camera...</div>
<script>
const video = document.getElementById('video'), overlay = document.getElementById('overlay');
const grab = document.createElement('canvas'), status = document.getElementById('status');
const SEND_SIDE = {send_side};
let answers = [], last = null;
window.liveState = {{frames: 0, captions: [], fps: 0, error: null}};
function draw(r) {{
  overlay.width = video.videoWidth; overlay.height = video.videoHeight;
  const g = overlay.getContext('2d'); g.clearRect(0, 0, overlay.width, overlay.height);
  const s = video.videoWidth / r.width;
  g.lineWidth = 3; g.font = '16px sans-serif';
  (r.boxes || []).forEach((b, i) => {{
    const hue = (i * 67) % 360; g.strokeStyle = g.fillStyle = `hsl(${{hue}},90%,55%)`;
    g.strokeRect(b[0] * s, b[1] * s, b[2] * s, b[3] * s);
    if (r.captions[i]) g.fillText(r.captions[i], b[0] * s + 4, b[1] * s + 18);
  }});
  document.getElementById('captions').textContent = (r.boxes && r.boxes.length) ? '' : r.captions.join(' | ');
}}
async function loop() {{
  while (true) {{
    if (!video.videoWidth) {{ await new Promise(r => setTimeout(r, 50)); continue; }}
    const k = Math.min(1, SEND_SIDE / Math.max(video.videoWidth, video.videoHeight));
    grab.width = Math.round(video.videoWidth * k); grab.height = Math.round(video.videoHeight * k);
    grab.getContext('2d').drawImage(video, 0, 0, grab.width, grab.height);
    const blob = await new Promise(r => grab.toBlob(r, 'image/jpeg', 0.9));
    try {{
      const resp = await fetch('frame', {{method: 'POST', body: blob, headers: {{'Content-Type': 'image/jpeg'}}}});
      const r = await resp.json();
      if (!resp.ok) {{ status.textContent = 'error: ' + r.error; window.liveState.error = r.error; }}
      else if (!r.dropped) {{
        draw(r); const now = performance.now(); answers.push(now);
        answers = answers.filter(t => now - t < 3000);
        const fps = answers.length > 1 ? 1000 * (answers.length - 1) / (now - answers[0]) : 0;
        Object.assign(window.liveState, {{frames: window.liveState.frames + 1, captions: r.captions, fps: fps}});
        status.textContent = `${{fps.toFixed(1)}} frames/s, model ${{r.ms.toFixed(0)}} ms`;
      }}
    }} catch (e) {{ status.textContent = 'server gone: ' + e; window.liveState.error = String(e);
                   await new Promise(r => setTimeout(r, 1000)); }}
  }}
}}
navigator.mediaDevices.getUserMedia({{video: true, audio: false}})
  .then(s => {{ video.srcObject = s; status.textContent = 'camera on'; loop(); }})
  .catch(e => {{ status.textContent = 'no camera: ' + e; window.liveState.error = String(e); }});
</script></body></html>
"""


class _Slot:
    """The one frame waiting for the model; a newer one takes its place and the older is dropped."""

    def __init__(self):
        self.cond = threading.Condition()
        self.waiting = None   # [image, event, result]

    def submit(self, image):
        job = [image, threading.Event(), None]
        with self.cond:
            if self.waiting is not None:
                old = self.waiting
                old[2] = {"dropped": True}
                old[1].set()
            self.waiting = job
            self.cond.notify()
        return job

    def take(self, timeout=0.5):
        with self.cond:
            if self.waiting is None:
                self.cond.wait(timeout)
            job, self.waiting = self.waiting, None
            return job


class LiveServer:
    """The page, `POST /frame` (a JPEG or PNG body -> JSON answer) and one model thread."""

    def __init__(self, predict, title="live", host="127.0.0.1", port=8000, max_bytes=MAX_BYTES, max_side=640,
                 send_side=480):
        self.predict, self.max_bytes, self.max_side = predict, max_bytes, max_side
        self.page = PAGE.format(title=title, send_side=int(send_side)).encode()
        self.slot, self.stopping = _Slot(), threading.Event()
        self.stats = {"answered": 0, "dropped": 0, "errors": 0}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, code, body, ctype="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the page went away (closed, reloaded)
                    self.close_connection = True

            def do_GET(self):
                if self.path.split("?")[0] in ("/", "/index.html"):
                    self._send(200, server.page, "text/html; charset=utf-8")
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                if self.path.split("?")[0] != "/frame":
                    return self._send(404, {"error": "not found"})
                try:
                    n = int(self.headers.get("Content-Length") or -1)
                except ValueError:
                    n = -1
                if n < 0:
                    return self._send(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length required"})
                if n > server.max_bytes:
                    self.close_connection = True
                    return self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                      {"error": f"frame of {n} bytes; at most {server.max_bytes}"})
                code, answer = server.answer(self.rfile.read(n))
                self._send(code, answer)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.request_queue_size = 64
        self.worker = threading.Thread(target=self._work, daemon=True)

    @property
    def url(self):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def decode(self, data):
        """bytes -> H x W x 3 uint8, longest side at most max_side; ValueError with a short reason."""
        try:
            im = Image.open(io.BytesIO(data))
            if im.width * im.height > 64e6:
                raise ValueError(f"frame of {im.width}x{im.height} pixels is too large")
            im.draft("RGB", (self.max_side, self.max_side))
            im = im.convert("RGB")
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
            raise ValueError(f"not an image ({str(e)[:60]})") from None
        if max(im.size) > self.max_side:
            k = self.max_side / max(im.size)
            im = im.resize((max(1, round(im.width * k)), max(1, round(im.height * k))), Image.BILINEAR)
        return np.asarray(im)

    def answer(self, data):
        """-> (HTTP code, JSON answer) for one posted frame; waits its turn, or is dropped by a newer one."""
        try:
            rgb = self.decode(data)
        except ValueError as e:
            return 400, {"error": str(e)}
        job = self.slot.submit(rgb)
        job[1].wait()
        result = job[2]
        if result.get("dropped"):
            self.stats["dropped"] += 1
        return (500 if "error" in result else 200), result

    def _work(self):
        while not self.stopping.is_set():
            job = self.slot.take()
            if job is None:
                continue
            rgb = job[0]
            t0 = time.perf_counter()
            try:
                out = self.predict(rgb)
                result = {"captions": list(out.get("captions", [])),
                          "boxes": [[float(v) for v in b] for b in out.get("boxes", [])],
                          "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                          "ms": 1000 * (time.perf_counter() - t0)}
                self.stats["answered"] += 1
            except Exception as e:  # one bad frame must not stop the page; it is reported to it
                self.stats["errors"] += 1
                result = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
            job[2] = result
            job[1].set()

    def start(self):
        """Serve from background threads (tests, notebooks); -> self."""
        self.worker.start()
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def serve(predict, title, host="127.0.0.1", port=8000, **kw):
    """Run the page until Ctrl-C (the `webcam.py` scripts)."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}: anyone who can reach this machine can use the model", file=sys.stderr)
    try:
        server = LiveServer(predict, title=title, host=host, port=port, **kw)
    except OSError as e:
        from common.cli import UserError
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}); pick another -port") from None
    server.worker.start()
    print(f"{title}: open {server.url} in a browser (allow the camera); Ctrl-C stops", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.stopping.set()
        server.httpd.server_close()
