"""First load over an ordinary connection: bytes and time to the first network drawn.

    python bench/firstload.py      # starts its own server; one JSON object per page (< 60 s)

Headless Chromium over CDP with the network emulated at 10 Mbit/s down, 5 Mbit/s up,
40 ms round trip, the cache off; a fresh browser context for each page.
bytes_transferred: every HTTP response the page loaded, headers included, as received
(compressed), counted once the page has loaded, drawn its network and gone quiet for
0.5 s; the websocket's frames are not in it. first_network_drawn_s: from navigation start
to the network panel's first picture of its neurons on its canvas (the page notes when
the Worker that draws it, or the page itself, has drawn it). One page load before the measured ones warms the
server (it gzips each file once, on its first request).
Goals: bytes_transferred <= 1,000,000, first_network_drawn_s <= 2.0.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import CHROMIUM, CHROMIUM_ARGS, live  # noqa: E402

PAGES = ("/", "/embed")
LINK = {"offline": False, "latency": 40, "downloadThroughput": 10e6 / 8, "uploadThroughput": 5e6 / 8}
QUIET_S = 0.5

# Runs before the page's own scripts: copies the time the network panel's first picture
# was drawn (views/network.js, firstDrawnAt) once there is one.
WATCH = """(() => {
  const look = () => {
    const net = window.__dp && window.__dp.network;
    if (net && net.firstDrawnAt !== null && net.firstDrawnAt !== undefined) window.__firstNetworkMs = net.firstDrawnAt;
    else setTimeout(look, 5);
  };
  look();
})();"""


def load(browser, url: str) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(WATCH)
    cdp = context.new_cdp_session(page)
    received: dict[str, float] = {}
    last = [time.monotonic()]

    def finished(e):
        received[e["requestId"]] = e["encodedDataLength"]
        last[0] = time.monotonic()

    cdp.on("Network.loadingFinished", finished)
    cdp.on("Network.requestWillBeSent", lambda e: last.__setitem__(0, time.monotonic()))
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", LINK)
    page.goto(url, wait_until="load")
    page.wait_for_function("() => window.__firstNetworkMs !== undefined", timeout=60000)
    while time.monotonic() - last[0] < QUIET_S:
        page.wait_for_timeout(100)
    drawn_ms = page.evaluate("() => window.__firstNetworkMs")
    context.close()
    return {"bytes_transferred": int(sum(received.values())), "requests": len(received),
            "first_network_drawn_s": round(drawn_ms / 1000, 2)}


def main() -> None:
    with live({"DP_LOG_LEVEL": "WARNING"}) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        load(browser, server.url + "/")  # warm-up: the server compresses each file once
        for path in PAGES:
            print(json.dumps({"page": path, **load(browser, server.url + path)}), flush=True)
        browser.close()


if __name__ == "__main__":
    main()
