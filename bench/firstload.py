"""First load: bytes and time to the first network drawn, on a desktop link or a phone.

    python bench/firstload.py             # starts its own server; one JSON object per page (< 60 s)
    python bench/firstload.py --mobile    # a phone: / and /embed, 3 runs each (< 2 min)
    python bench/firstload.py --mobile --runs 5 --detail   # and when each file and step came

Headless Chromium over CDP, the cache off, a fresh browser context for each load.
Default: the network emulated at 10 Mbit/s down, 5 Mbit/s up, 40 ms round trip; a
1280x900 window. --mobile: Lighthouse's mobile profile: the page's CPU slowed down 4x
(Emulation.setCPUThrottlingRate), 1.6 Mbit/s down, 750 kbit/s up, 150 ms latency, a
390x844 phone screen (mobile viewport, touch, 3 device pixels per CSS px).
bytes_transferred: every HTTP response the page loaded, headers included, as received
(compressed), counted once the page has loaded, drawn its network and gone quiet for
0.5 s; the websocket's frames are not in it. first_network_drawn_s: from navigation start
to the network panel's first picture of its neurons on its canvas (the page notes when
the Worker that draws it, or the page itself, has drawn it). One page load before the
measured ones warms the server (it gzips each file once, on its first request).
With --runs N (or --mobile) a page's line gives every run and the range.
--detail: per run, each file's request start and end (ms), and when the page had Plotly,
its Plotly panels set up (window.__dp) and its run configured (these steps polled, to ~5 ms).
Goals: bytes_transferred <= 1,000,000; first_network_drawn_s <= 2.0 (desktop), <= 3.4
(mobile: the TensorFlow Playground's time on that profile; aim <= 2.8).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import CHROMIUM, CHROMIUM_ARGS, live  # noqa: E402

PAGES = ("/", "/embed")
DESKTOP = {"link": {"offline": False, "latency": 40, "downloadThroughput": 10e6 / 8, "uploadThroughput": 5e6 / 8},
           "cpu": 1, "context": {"viewport": {"width": 1280, "height": 900}}}
MOBILE = {"link": {"offline": False, "latency": 150, "downloadThroughput": 1.6e6 / 8, "uploadThroughput": 750e3 / 8},
          "cpu": 4, "context": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
                                "device_scale_factor": 3}}
QUIET_S = 0.5

# Runs before the page's own scripts: copies the time the network panel's first picture
# was drawn (views/network.js marks it 'dp:network-drawn') once there is one, and when the
# page had Plotly, its panels (window.__dp: Plotly's panels set up), its socket, its run.
WATCH = """(() => {
  const steps = window.__steps = {};
  const start = performance.now();
  const look = () => {
    const t = Math.round(performance.now());
    if (window.Plotly && !steps.plotly) steps.plotly = t;
    const dp = window.__dp;
    if (dp && !steps.panels) steps.panels = t;
    if (dp && dp.info && !steps.configured) steps.configured = t;
    const mark = performance.getEntriesByName('dp:network-drawn')[0];
    if (mark && window.__firstNetworkMs === undefined) window.__firstNetworkMs = mark.startTime;
    if (!(mark && dp && dp.info) && t - start < 120000) setTimeout(look, 5);
  };
  look();
})();"""

FILES = """() => performance.getEntriesByType('resource').map(e =>
  [e.name.replace(location.origin, '').replace(/\\/(assets|vendor)\\/[0-9a-f]{16}\\//, '/$1/…/'),
   Math.round(e.startTime), Math.round(e.responseEnd), e.transferSize])"""


def load(browser, url: str, profile: dict, detail: bool = False) -> dict:
    context = browser.new_context(**profile["context"])
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
    cdp.send("Network.emulateNetworkConditions", profile["link"])
    if profile["cpu"] != 1:
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": profile["cpu"]})
    page.goto(url, wait_until="load", timeout=120000)
    page.wait_for_function("() => window.__firstNetworkMs !== undefined", timeout=120000)
    while time.monotonic() - last[0] < QUIET_S:
        page.wait_for_timeout(100)
    drawn_ms = page.evaluate("() => window.__firstNetworkMs")
    out = {"bytes_transferred": int(sum(received.values())), "requests": len(received),
           "first_network_drawn_s": round(drawn_ms / 1000, 2)}
    if detail:
        nav = page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                            " return {html: Math.round(n.responseEnd), dom_content_loaded: Math.round(n.domContentLoadedEventEnd),"
                            " load: Math.round(n.loadEventEnd)}; }")
        out["steps_ms"] = {**nav, **page.evaluate("() => window.__steps"), "network_drawn": round(drawn_ms)}
        out["files_ms"] = page.evaluate(FILES)
    context.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mobile", action="store_true", help="Lighthouse's mobile profile (4x CPU, 1.6 Mbit/s, 150 ms)")
    ap.add_argument("--runs", type=int, default=None, help="loads per page (default 1; 3 with --mobile)")
    ap.add_argument("--detail", action="store_true", help="each run's files and steps, in ms from navigation")
    ap.add_argument("--pages", nargs="*", default=list(PAGES))
    args = ap.parse_args()
    profile = MOBILE if args.mobile else DESKTOP
    runs = args.runs or (3 if args.mobile else 1)
    with live({"DP_LOG_LEVEL": "WARNING"}) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        load(browser, server.url + "/", DESKTOP)  # warm-up: the server compresses each file once
        for path in args.pages:
            results = [load(browser, server.url + path, profile, args.detail) for _ in range(runs)]
            line = {"page": path, "profile": "mobile" if args.mobile else "desktop"}
            if runs == 1:
                line.update(results[0])
            else:
                times = [r["first_network_drawn_s"] for r in results]
                sizes = [r["bytes_transferred"] for r in results]
                line.update({"runs": runs, "first_network_drawn_s": [min(times), max(times)],
                             "each_s": times, "bytes_transferred": [min(sizes), max(sizes)],
                             "requests": results[0]["requests"]})
                if args.detail:
                    line["detail"] = [{k: r[k] for k in ("first_network_drawn_s", "steps_ms", "files_ms")} for r in results]
            print(json.dumps(line), flush=True)
        browser.close()


if __name__ == "__main__":
    main()
