"""Browser benchmark: the default playground at full speed in headless Chromium.

    python bench/browser.py        # starts its own server; prints one JSON object (< 60 s)

fps: network-panel repaints per second (every panel live); latency: frame created on the
server (header "t") -> painted in the page (same machine clock); bytes_per_frame: mean
size of the binary frames received; boundary_per_s / loss_per_s: refreshes of the slower
panels; main_thread_busy_percent: the renderer's main thread busy running tasks (script,
style, layout, paint), as a share of the measured wall time: Chromium's Performance domain
(TaskDuration). Goals (issue 12): fps >= 55, latency_p95_ms <= 100, frames_per_s >= 25,
main_thread_busy_percent <= 50. The slower panels are reported: the boundary comes about
6 times a second, the loss chart twice (one Plotly redraw, ~25 ms here, each).
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import CHROMIUM, CHROMIUM_ARGS, live  # noqa: E402

WARMUP_S, MEASURE_S = 4.0, 12.0

SNAPSHOT = """() => { const d = window.__dp; return {
    t: performance.now(), paints: d.stats.paints, frames: d.stats.frames, bytes: d.stats.bytes,
    lat: d.stats.latencies.length, plane: d.plane.paints, loss: d.losses.paints }; }"""


def metrics(cdp) -> dict:
    """Chromium's Performance domain counters: seconds of main-thread tasks, a clock."""
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def main() -> None:
    with live({"DP_LOG_LEVEL": "WARNING"}) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url + "/")
        page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable", {"timeDomain": "timeTicks"})
        page.click("[data-role=play]")
        page.wait_for_timeout(WARMUP_S * 1000)
        a, ma = page.evaluate(SNAPSHOT), metrics(cdp)
        page.wait_for_timeout(MEASURE_S * 1000)
        b, mb = page.evaluate(SNAPSHOT), metrics(cdp)
        lat = page.evaluate(f"() => window.__dp.stats.latencies.slice({a['lat'] - b['lat']})")
        browser.close()
    dt = (b["t"] - a["t"]) / 1000
    frames = b["frames"] - a["frames"]
    lat = sorted(lat)
    print(json.dumps({
        "fps": round((b["paints"] - a["paints"]) / dt, 1),
        "frames_per_s": round(frames / dt, 1),
        "latency_p50_ms": round(statistics.median(lat), 1) if lat else None,
        "latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
        "bytes_per_frame": round((b["bytes"] - a["bytes"]) / max(frames, 1)),
        "boundary_per_s": round((b["plane"] - a["plane"]) / dt, 1),
        "loss_per_s": round((b["loss"] - a["loss"]) / dt, 1),
        "main_thread_busy_percent": round(100 * (mb["TaskDuration"] - ma["TaskDuration"]) / (mb["Timestamp"] - ma["Timestamp"]), 1),
    }))


if __name__ == "__main__":
    main()
