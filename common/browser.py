"""Headless Chromium (selenium) and a throwaway local web server, for testing the static vis pages.

    with serve_folder("vis") as url, headless_chromium() as driver:
        driver.get(url + "/index.html")

Tests call `require_chromium()` first: it skips (with the reason) only when chromium/chromedriver
are not installed; CI installs them with apt-get, so there the page tests always run.
"""
import contextlib
import functools
import http.server
import os
import shutil
import tempfile
import threading

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
DRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage", "--window-size=1280,1024")


def _first(paths, name):
    for p in paths:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def chromium_paths():
    """(browser, driver) executables, or None for each one missing."""
    return _first(CHROMIUM_CANDIDATES, "chromium"), _first(DRIVER_CANDIDATES, "chromedriver")


def missing_reason():
    """Why the browser tests cannot run here (None when they can)."""
    browser, driver = chromium_paths()
    if browser is None or driver is None:
        return ("chromium and chromium-driver are not installed; enable these tests with "
                "`apt-get update && apt-get install -y chromium chromium-driver` (Debian/Ubuntu, as root)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


def require_chromium():
    """pytest.skip with the reason when the browser is not installed; call at the top of a test."""
    import pytest

    reason = missing_reason()
    if reason:
        pytest.skip(reason)


@contextlib.contextmanager
def headless_chromium(page_load_timeout=30, extra_args=()):
    """A selenium Chrome webdriver on the system chromium, with a fresh profile, quit on exit.

    extra_args: more Chromium flags, e.g. `fake_camera_args(clip.y4m)` for a page that opens the camera."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    if browser is None or driver_path is None:
        raise RuntimeError(missing_reason())
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for f in (*CHROMIUM_FLAGS, *extra_args):
        opts.add_argument(f)
    opts.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def fake_camera_args(y4m_path):
    """Chromium flags that give a page a camera playing `y4m_path` (looped), with no permission prompt."""
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={os.fspath(y4m_path)}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_folder(path):
    """Serve `path` over HTTP on 127.0.0.1 (a free port) from a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=os.fspath(path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
