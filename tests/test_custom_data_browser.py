"""Your own data in a real browser: points drawn by clicking on the boundary panel train,
a CSV with a bad row is refused naming the row and the field, and a link brings a drawn
set back."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.browser

STATE = "() => window.__dp.state.customPoints"
# (fraction of the plot area across, fraction down, class): two per quadrant, XOR-like
CLICKS = [(0.2, 0.2, 0), (0.3, 0.25, 0), (0.8, 0.8, 0), (0.7, 0.75, 0),
          (0.2, 0.8, 1), (0.25, 0.7, 1), (0.8, 0.2, 1), (0.75, 0.3, 1)]


def same_set(a, b, tol=1e-6) -> bool:
    a, b = sorted(map(tuple, a)), sorted(map(tuple, b))
    return len(a) == len(b) and np.allclose(np.asarray(a, float), np.asarray(b, float), atol=tol, rtol=0)


def open_custom(page, url: str, hash_: str = "#data=custom"):
    page.goto(url + "/" + hash_)
    page.wait_for_function("() => window.__dp && window.__dp.conn.socket.connected", timeout=30000)
    page.wait_for_selector("[data-role=custom-editor]:not([hidden])")
    return page


def plot_area(page) -> dict:
    """The plot area (inside the axes) of the points layer, in page pixels."""
    return page.evaluate("""() => {
        const gd = document.querySelector('[data-role=plane] .stack-top');
        const r = gd.getBoundingClientRect(), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        return {x: r.left + xa._offset, y: r.top + ya._offset, w: xa._length, h: ya._length};
    }""")


def click_points(page, clicks, modifiers=None):
    for fx, fy, cls in clicks:
        page.check(f"[data-role=custom-class][value='{cls}']")
        area = plot_area(page)
        page.mouse.click(area["x"] + fx * area["w"], area["y"] + fy * area["h"])
        if modifiers:
            break


def wait_configured_with(page, n: int):
    page.wait_for_function(f"""() => {{ const i = window.__dp.info;
        return i && i.config.data.dataset === 'custom' && i.train_size + i.test_size === {n}; }}""", timeout=30000)
    return page.evaluate("() => window.__dp.info")


def test_draw_points_by_clicking_then_train_on_them(page, live_server):
    open_custom(page, live_server.url)
    # an empty set cannot train: no run, and the page says what is missing
    page.wait_for_function("() => document.querySelector('[data-role=custom-status]').textContent.includes('at least 4')")
    assert page.locator("[data-role=play]").is_disabled()
    assert page.evaluate("() => window.__dp.info") is None

    click_points(page, CLICKS)
    info = wait_configured_with(page, len(CLICKS))
    drawn = page.evaluate(STATE)
    assert len(drawn) == 8 and [p[2] for p in drawn] == [c for *_, c in CLICKS]
    # each point landed where it was clicked: x grows to the right, y upwards, inside the plane
    xs, ys = [p[0] for p in drawn], [p[1] for p in drawn]
    assert xs[0] < 0 < xs[2] and ys[0] > 0 > ys[2] and all(-1.5 <= v <= 1.5 for v in xs + ys)
    assert all(round(v, 2) == v for v in xs + ys)  # kept to 2 decimals
    # the acknowledgement's points are the drawn ones, split by train_fraction
    assert info["config"]["data"]["points"] == drawn
    assert len(info["points"]["train"]) == 4 and len(info["points"]["test"]) == 4
    assert same_set(info["points"]["train"] + info["points"]["test"], drawn)
    # the batch size follows the training set while that is smaller than the batch chosen:
    # lowered for the first set that could train (4 points, 2 to train on), raised as it grew
    assert info["config"]["train"]["batch_size"] == len(info["points"]["train"]) == 4
    assert page.locator("#f-batch").input_value() == "4"

    assert page.locator("[data-role=play]").is_enabled()
    page.click("[data-role=play]")
    page.wait_for_function("() => window.__dp.drawn && window.__dp.drawn.header.step >= 50", timeout=30000)
    page.click("[data-role=play]")  # pause
    header = page.evaluate("() => window.__dp.drawn.header")
    assert any(np.allclose(header["example"]["x"], p[:2], atol=1e-5) for p in info["points"]["train"])
    assert header["eval"] is not None

    # Shift-click on a point removes it; the run follows the smaller set
    area = plot_area(page)
    fx, fy, _ = CLICKS[0]
    page.keyboard.down("Shift")
    page.mouse.click(area["x"] + fx * area["w"], area["y"] + fy * area["h"])
    page.keyboard.up("Shift")
    wait_configured_with(page, 7)
    assert page.evaluate(STATE) == drawn[1:]
    # the eraser does the same with a plain click
    page.check("[data-role=custom-erase]")
    fx, fy, _ = CLICKS[1]
    page.mouse.click(area["x"] + fx * area["w"], area["y"] + fy * area["h"])
    wait_configured_with(page, 6)
    assert page.evaluate(STATE) == drawn[2:]
    page.uncheck("[data-role=custom-erase]")

    # Clear empties the set: nothing to train, the transport waits
    page.click("[data-role=custom-clear]")
    page.wait_for_function("() => window.__dp.state.customPoints.length === 0")
    assert page.locator("[data-role=play]").is_disabled()
    assert "Your points" in page.locator("[data-role=plane-title]").inner_text()
    assert not page.errors, page.errors


def test_csv_with_a_bad_row_names_the_row_and_the_field(page, live_server):
    open_custom(page, live_server.url)
    bad = b"x,y,label\n0.1,0.2,0\n-0.5,0.7,1\n0.4,2.5,1\n0.3,0.3,0\n"
    page.set_input_files("[data-role=custom-file]", files=[
        {"name": "mine.csv", "mimeType": "text/csv", "buffer": bad}])
    error = page.locator("[data-role=custom-error]")
    error.wait_for(state="visible")
    text = error.inner_text()
    assert "mine.csv" in text and "row 4" in text and "field y" in text
    assert "between -1.5 and 1.5, but got 2.5" in text
    assert page.evaluate(STATE) == []  # the set was not changed

    page.set_input_files("[data-role=custom-file]", files=[
        {"name": "labels.csv", "mimeType": "text/csv", "buffer": b"0,0,0\n1,1,1\n0,1,yes\n"}])
    page.wait_for_function("() => document.querySelector('[data-role=custom-error]').textContent.includes('labels.csv')")
    text = error.inner_text()
    assert "row 3" in text and "field label" in text and "'yes'" in text

    # a good file (no header) replaces the set, and the run trains on it
    good = "\n".join(f"{x:.3f},{y:.3f},{int(x * y > 0)}" for x, y in
                     np.random.default_rng(1).uniform(-1.4, 1.4, size=(30, 2))) + "\n"
    page.set_input_files("[data-role=custom-file]", files=[
        {"name": "good.csv", "mimeType": "text/csv", "buffer": good.encode()}])
    info = wait_configured_with(page, 30)
    assert error.is_hidden()
    assert "Loaded 30 points from good.csv" in page.locator("[data-role=custom-status]").inner_text()
    want = [[float(x), float(y), int(c)] for x, y, c in (line.split(",") for line in good.split())]
    got = page.evaluate(STATE)
    assert all(round(v, 2) == v for p in got for v in p[:2])  # kept to 2 decimals ...
    assert np.allclose(got, want, atol=0.0051, rtol=0)        # ... of the file's numbers, in its order
    assert same_set(info["points"]["train"] + info["points"]["test"], got)
    assert not page.errors, page.errors


def test_a_drawn_set_comes_back_from_its_link(page, live_server, browser):
    open_custom(page, live_server.url, "#data=custom&seed=5&trainfrac=0.6")
    click_points(page, CLICKS)
    first = wait_configured_with(page, 8)
    drawn = page.evaluate(STATE)
    page.wait_for_function("() => location.hash.includes('pts=')")
    url = page.url
    assert len(url) < 200  # compact: 8 points take 20 characters

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        other = context.new_page()
        other.goto(url)
        other.wait_for_function("() => window.__dp && window.__dp.info", timeout=30000)
        assert other.evaluate(STATE) == drawn  # exactly: coordinates are kept to 2 decimals
        again = other.evaluate("() => window.__dp.info")
        assert again["config"]["data"] == first["config"]["data"]
        assert again["points"] == first["points"]  # the same seeded split
        assert other.locator("[data-role=custom-editor]").is_visible()
    finally:
        context.close()


def test_a_set_too_big_for_a_link_offers_a_download(page, live_server, tmp_path):
    open_custom(page, live_server.url)
    rows = np.random.default_rng(2).uniform(-1.4, 1.4, size=(900, 2)).round(2)
    csv = "x,y,label\n" + "\n".join(f"{x},{y},{int(x > y)}" for x, y in rows) + "\n"
    page.set_input_files("[data-role=custom-file]", files=[
        {"name": "big.csv", "mimeType": "text/csv", "buffer": csv.encode()}])
    wait_configured_with(page, 900)
    note = page.locator("[data-role=custom-link]")
    note.wait_for(state="visible")
    assert "too many for a link" in note.inner_text() and "Download" in note.inner_text()
    assert "pts=" not in page.evaluate("() => location.hash")
    with page.expect_download() as info:
        page.click("[data-role=custom-download]")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    lines = path.read_text().split()
    assert lines[0] == "x,y,label" and len(lines) == 901
    assert same_set([[float(v) for v in line.split(",")] for line in lines[1:]],
                    [[x, y, int(x > y)] for x, y in rows])
    assert not page.errors, page.errors


def test_switching_to_custom_starts_from_the_points_on_screen(page, live_server):
    page.goto(live_server.url + "/#data=moons&points=200")
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    shown = page.evaluate("() => window.__dp.info.points")
    page.select_option("#f-data", "custom")
    info = wait_configured_with(page, 200)
    started = page.evaluate(STATE)
    # in the order shown (train, then test), rounded to 2 decimals
    assert np.allclose(started, shown["train"] + shown["test"], atol=0.0051, rtol=0)
    assert info["config"]["data"]["points"] == started
    assert "Started from the 200 points of moons" in page.locator("[data-role=custom-status]").inner_text()
    assert "pts=" in page.evaluate("() => location.hash")
    assert page.locator("#f-points").is_hidden() and page.locator("#f-noise").is_hidden()
    page.select_option("#f-data", "circle")  # and back: the set stays out of the config and the link
    page.wait_for_function("() => window.__dp.info && window.__dp.info.config.data.dataset === 'circle'", timeout=30000)
    assert page.locator("[data-role=custom-editor]").is_hidden()
    assert "pts=" not in page.evaluate("() => location.hash")
    assert not page.errors, page.errors


def test_link_form_round_trips_every_coordinate_and_refuses_a_damaged_link(page, live_server):
    open_custom(page, live_server.url)
    result = page.evaluate("""async () => {
        const c = await import('/static/js/custom_data.js');
        const pts = [];
        for (let i = 0; i <= 300; i++) pts.push([Math.round(i - 150) / 100, Math.round(150 - i) / 100, i % 2]);
        const code = c.encodePoints(pts);
        const back = c.decodePoints(code);
        const damaged = c.decodePoints(code.slice(0, 10) + '*' + code.slice(11));
        const most = Array.from({length: c.LINK_POINTS + 1}, (_, i) => [0, 0, i % 2]);
        return {same: JSON.stringify(back.points) === JSON.stringify(pts), problem: back.problem,
                length: code.length, damaged: damaged.problem,
                fits: c.fitsLink(most.slice(0, -1)), over: c.fitsLink(most), linkPoints: c.LINK_POINTS};
    }""")
    assert result["same"] and result["problem"] is None
    assert result["length"] == 1 + -(-301 * 19 // 6)  # 19 bits a point
    assert "could not be read" in result["damaged"]
    assert result["fits"] and not result["over"] and result["linkPoints"] == 631
    # a damaged link: the page says so and starts with an empty set
    page.goto("about:blank")  # a new document, not a hash change
    page.goto(live_server.url + "/#data=custom&pts=1AB*")
    page.wait_for_selector("[data-role=notice]:not([hidden])")
    assert "could not be read" in page.locator("[data-role=notice]").inner_text()
    assert page.evaluate(STATE) == []
