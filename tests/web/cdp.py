"""A small Chrome DevTools Protocol driver for Debian's headless ``chromium`` (nothing downloaded).

One websocket to the browser; pages are targets attached in flat mode, and frames that Chromium
puts in other processes (sandboxed iframes) are auto-attached too, so console messages, failed
requests and JavaScript dialogs of every frame are seen. Everything runs on the caller's thread.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CDPError(RuntimeError):
    pass


@dataclass
class Problems:
    """What a page must not show: console errors, uncaught exceptions, failed requests, dialogs."""

    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.console.clear()
        self.failed.clear()
        self.dialogs.clear()


class Browser:
    def __init__(self, executable: str, *, width: int = 1360, height: int = 900) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="graphattach-chromium-"))
        self.downloads = self.profile / "downloads"
        self.downloads.mkdir()
        args = [
            executable,
            "--headless=new",
            "--no-sandbox",  # the tests may run as root (CI); the pages under test are our own
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--hide-scrollbars",
            "--mute-audio",
            f"--window-size={width},{height}",
            f"--user-data-dir={self.profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise CDPError("chromium did not start")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws: ClientConnection = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=10)
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []
        self.width, self.height = width, height
        self.call(
            "Browser.setDownloadBehavior",
            {"behavior": "allowAndName", "downloadPath": str(self.downloads), "eventsEnabled": True},
        )

    # -- wire ---------------------------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> int:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        return message_id

    def _read(self, timeout: float) -> dict[str, Any] | None:
        try:
            raw = self.ws.recv(timeout=max(0.01, timeout))
        except TimeoutError:
            return None
        message: dict[str, Any] = json.loads(raw)
        if "method" in message:
            self._on_event(message)
        return message

    def _on_event(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        if event["method"] == "Target.attachedToTarget":
            # a frame in another process (or a worker): watch it as well, then let it run
            child = event["params"]["sessionId"]
            for method in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable"):
                self._send(method, session=child)
            self._send(
                "Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}, child
            )
            self._send("Runtime.runIfWaitingForDebugger", session=child)
        elif event["method"] == "Page.javascriptDialogOpening":
            self._send("Page.handleJavaScriptDialog", {"accept": False}, event.get("sessionId"))

    def call(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 30
    ) -> Any:
        message_id = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._read(deadline - time.monotonic())
            if message is not None and message.get("id") == message_id:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
        raise CDPError(f"{method}: no answer in {timeout} s")

    def pump(self, seconds: float) -> None:
        """Read events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._read(deadline - time.monotonic())

    def wait_event(self, method: str, predicate: Any = None, timeout: float = 30, start: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        index = start
        while True:
            while index < len(self._events):
                event = self._events[index]
                index += 1
                if event["method"] == method and (predicate is None or predicate(event)):
                    return event
            if time.monotonic() > deadline:
                raise CDPError(f"no {method} in {timeout} s")
            self._read(min(0.2, deadline - time.monotonic()))

    def new_page(self) -> Page:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, target, session)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, target: str, session: str) -> None:
        self.browser = browser
        self.target = target
        self.session = session
        self.sessions = {session}
        for method in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.call(method)
        self.call("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True})
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": browser.width, "height": browser.height, "deviceScaleFactor": 1, "mobile": False},
        )
        self._mark = len(browser._events)

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.browser.call(method, params, self.session)

    def _mine(self, event: dict[str, Any]) -> bool:
        session = event.get("sessionId")
        if session in self.sessions:
            return True
        if event["method"] == "Target.attachedToTarget" and event.get("sessionId") in self.sessions:
            return True
        return False

    def _track_children(self) -> None:
        for event in self.browser._events[self._mark :]:
            if event["method"] == "Target.attachedToTarget" and event.get("sessionId") in self.sessions:
                self.sessions.add(event["params"]["sessionId"])

    def problems(self, since: int = 0) -> Problems:
        """Console errors, exceptions, failed requests and dialogs since event index ``since``."""
        self._track_children()
        found = Problems()
        for event in self.browser._events[since:]:
            if event.get("sessionId") not in self.sessions:
                continue
            method, params = event["method"], event["params"]
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                found.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                found.console.append(str(params["exceptionDetails"].get("text")))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.console.append(f"{params['entry'].get('text')} ({params['entry'].get('url', '')})")
            elif method == "Network.loadingFailed" and not params.get("canceled"):
                found.failed.append(f"{params.get('errorText')} {params.get('blockedReason', '')}")
            elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
                found.failed.append(f"{params['response']['status']} {params['response']['url']}")
            elif method == "Page.javascriptDialogOpening":
                found.dialogs.append(f"{params['type']}: {params['message']}")
        return found

    def mark(self) -> int:
        return len(self.browser._events)

    def goto(self, url: str, *, settle: float = 0.3) -> int:
        """Open ``url``, wait for its load event (and ``settle`` seconds more); return the event
        index where this navigation's events start (for ``problems``)."""
        start = self.mark()
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"{url}: {result['errorText']}")
        self.browser.wait_event("Page.loadEventFired", lambda e: e.get("sessionId") == self.session, start=start)
        self.browser.pump(settle)
        return start

    def eval(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CDPError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        """Evaluate ``expression`` until it is truthy (events keep being read meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"still falsy after {timeout} s: {expression}")
            self.browser.pump(0.05)

    def screenshot(self, path: Path, *, full_page: bool = True) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            height = min(int(metrics["cssContentSize"]["height"]), 2400)
            params["clip"] = {"x": 0, "y": 0, "width": self.browser.width, "height": max(height, 400), "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.browser.call("Target.closeTarget", {"targetId": self.target})
