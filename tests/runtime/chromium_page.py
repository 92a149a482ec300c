"""Open a local page in headless Chromium over the DevTools protocol; collect errors, images, a screenshot.

Test helper only. Chromium runs with no network (``--disable-background-networking`` and friends, plus a
proxy that points nowhere), a throw-away profile, and ``--remote-debugging-port=0``; the port is read from
the profile's ``DevToolsActivePort`` file, so parallel runs never clash.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

__all__ = ["PageResult", "chromium_binary", "open_page"]

_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]

_IMAGES_JS = """JSON.stringify(Array.from(document.images).map(img => ({
  alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
  renderedWidth: img.getBoundingClientRect().width, srcPrefix: img.src.slice(0, 22)})))"""
_RESOURCES_JS = "JSON.stringify(performance.getEntriesByType('resource').map(e => e.name.slice(0, 60)))"


@dataclasses.dataclass
class PageResult:
    """What the browser saw: errors of every kind, the images' decoded sizes, requests, and a PNG."""

    errors: list[str]
    images: list[dict[str, Any]]
    requests: list[str]
    resources: list[str]
    title: str
    screenshot: bytes


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Cdp:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        call_id = self.next_id
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            self.events.append(message)
            if message.get("method") == method:
                return message

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=max(0.05, deadline - time.monotonic()))))
            except TimeoutError:
                return


def _devtools_port(profile: Path, process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} before opening DevTools")
        if marker.is_file():
            first = marker.read_text().splitlines()[:1]
            if first and first[0].strip().isdigit():
                return int(first[0])
        time.sleep(0.1)
    raise TimeoutError("chromium did not open its DevTools port")


def _error_text(event: dict[str, Any]) -> str | None:
    method = event.get("method")
    params = event.get("params", {})
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        return "exception: " + str(details.get("exception", {}).get("description") or details.get("text"))
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        return "console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in params.get("args", []))
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip()
    if method == "Network.loadingFailed":
        return f"load failed: {params.get('errorText')} ({params.get('blockedReason', '')})"
    return None


def _stop_group(process: subprocess.Popen) -> None:
    """Terminate Chromium and every process of its group; kill what is left after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)  # helpers that outlived the browser
    except ProcessLookupError:
        pass


def _remove_profile(profile: Path) -> None:
    """Remove the throw-away profile; a helper still closing its files can refill a folder for a moment."""
    for _ in range(50):
        try:
            shutil.rmtree(profile)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    shutil.rmtree(profile)


def open_page(path: Path, width: int = 1280) -> PageResult:
    """Load ``path`` (a local file) and report what happened. Raises if Chromium cannot be started."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium; .ci/system-deps does it)")
    profile = Path(tempfile.mkdtemp(prefix="tfspec-chromium-"))
    try:
        # its own process group: the browser's helper processes (renderer, GPU, zygote) go with it, and none is
        # left writing into the profile while it is removed
        process = subprocess.Popen([binary, *_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port = _devtools_port(profile, process)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                pages = [t for t in json.load(response) if t.get("type") == "page"]
            with connect(pages[0]["webSocketDebuggerUrl"], max_size=256 * 1024 * 1024, open_timeout=20) as ws:
                cdp = _Cdp(ws)
                for domain in ("Page", "Runtime", "Log", "Network"):
                    cdp.call(f"{domain}.enable")
                cdp.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1,
                         mobile=False)
                cdp.events.clear()
                cdp.call("Page.navigate", url=path.resolve().as_uri())
                cdp.wait_for("Page.loadEventFired")
                cdp.drain(0.5)
                images = json.loads(cdp.call("Runtime.evaluate", expression=_IMAGES_JS, returnByValue=True)["result"]["value"])
                resources = json.loads(cdp.call("Runtime.evaluate", expression=_RESOURCES_JS, returnByValue=True)["result"]["value"])
                title = cdp.call("Runtime.evaluate", expression="document.title", returnByValue=True)["result"]["value"]
                shot = cdp.call("Page.captureScreenshot", timeout=60.0, format="png", captureBeyondViewport=True)
                cdp.drain(0.2)
                errors = [text for text in map(_error_text, cdp.events) if text]
                requests = [e["params"]["request"]["url"][:80] for e in cdp.events
                            if e.get("method") == "Network.requestWillBeSent"]
        finally:
            _stop_group(process)
    finally:
        _remove_profile(profile)
    return PageResult(errors, images, requests, resources, title, base64.b64decode(shot["data"]))
