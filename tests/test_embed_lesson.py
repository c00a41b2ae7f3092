"""A lesson embedded whole (issue 24, item 6): /embed?lesson=<id> and the oEmbed of a
lesson's own link show its question, run to its verdict and post `prediction` and
`verdict` to a host page on another origin; every lesson of the served list opens so, at
700 px and at 390 px wide."""
from __future__ import annotations

import json
import re

import pytest
import requests

from app.embed import LESSON_SIZE, lessons
from conftest import ARTIFACTS, live
from test_embed import PREFIX, CoursePage, new_tab

LIVE = 90_000
TITLES = lessons()


# ---- oEmbed and the page, without a browser ---------------------------------------------------
@pytest.mark.parametrize("url, lesson", [
    ("http://localhost/lessons#noise", "noise"),
    ("http://localhost/lessons/thinned", "thinned"),
    ("http://localhost/lessons", next(iter(TITLES))),   # the lessons page opens the first
    ("http://localhost/embed?lesson=inverted-scaling", "inverted-scaling"),
])
def test_oembed_of_a_lesson_link_embeds_that_lesson_with_its_title(http, url, lesson):
    doc = http.get("/oembed", query_string={"url": url, "format": "json"}).get_json()
    assert f'src="http://localhost/embed?lesson={lesson}"' in doc["html"]
    assert doc["title"] == TITLES[lesson] and f'title="{TITLES[lesson]}"' in doc["html"]
    assert (doc["width"], doc["height"]) == LESSON_SIZE and LESSON_SIZE[0] == 700
    narrow = http.get("/oembed", query_string={"url": url, "maxwidth": 390}).get_json()
    assert narrow["width"] == 390 and 'width="390"' in narrow["html"]


def test_a_lessons_own_page_leads_oembed_discovery_to_that_lesson(http):
    html = http.get("/lessons/noise").get_data(as_text=True)
    href = re.search(r'<link rel="alternate" type="application/json\+oembed" href="([^"]+)"', html).group(1)
    assert href.startswith("http://localhost/oembed?")
    doc = http.get(href[len("http://localhost"):].replace("&amp;", "&")).get_json()
    assert 'src="http://localhost/embed?lesson=noise"' in doc["html"] and doc["title"] == TITLES["noise"]


def test_the_lesson_embed_page_names_its_lesson_and_runs_no_inline_script(http):
    html = http.get("/embed?lesson=noise&id=left").get_data(as_text=True)
    assert f"<title>{TITLES['noise']} · Dropout Playground</title>" in html
    assert "js/embed_lesson" in html and "embed-lesson" in html
    block = html.split('id="dp-embed-config">')[1].split("</script>")[0]
    assert json.loads(block) == {"origins": ["*"], "lesson": "noise", "id": "left"}


# ---- every lesson of the served list, in a browser ---------------------------------------------
def test_every_served_lesson_embeds_with_its_question_at_700_and_390_px(live_server, browser):
    context, tab = new_tab(browser, width=700, height=900)
    try:
        tab.goto(live_server.url + "/lessons")
        served = tab.evaluate("async () => (await import('/static/js/lessons.js')).LESSONS.map(l => [l.id, l.title, l.question.prompt])")
        assert [[i, t] for i, t, _ in served] == [[i, t] for i, t in TITLES.items()]  # the server reads the same list
        for width in (700, 390):
            tab.set_viewport_size({"width": width, "height": 844})
            for lesson_id, title, prompt in served:
                tab.goto(f"{live_server.url}/embed?lesson={lesson_id}")
                tab.wait_for_function(f"() => window.__lesson && window.__lesson.id === {json.dumps(lesson_id)}", timeout=LIVE)
                assert tab.locator(".lesson-head h2").inner_text() == title
                assert tab.locator(".predict legend").inner_text() == prompt
                assert tab.evaluate("() => window.__lesson.started") is False  # predict first
                own = tab.locator(".lesson-actions a", has_text="Open this lesson").get_attribute("href")
                assert own == f"/lessons/{lesson_id}"  # the lesson's own page: oEmbed discovery finds it
                wide = tab.evaluate("() => document.documentElement.scrollWidth")
                assert wide <= width, f"{lesson_id} is {wide} px wide at {width}"
        assert tab.errors == []
    finally:
        context.close()


# ---- a host page on another origin: by link and by oEmbed, to the verdict ---------------------
HOST = """<!doctype html><title>A course</title>
<iframe id="link" src="{link}" style="width: 700px; height: 900px; border: 0"></iframe>
<div id="oembed">{oembed}</div>
<script>
  window.__host = {{ received: [] }};
  addEventListener('message', e => {{
    if (e.origin !== {origin}) return;
    const which = e.source === document.getElementById('link').contentWindow ? 'link' : 'oembed';
    window.__host.received.push({{ which, ...e.data }});
  }});
</script>"""


def messages(tab, which: str, name: str) -> list[dict]:
    return tab.evaluate("([w, t]) => window.__host.received.filter(m => m.which === w && m.type === t)", [which, PREFIX + name])


def predict(frame, lesson_id: str, right: bool) -> str:
    answer = frame.evaluate(f"async () => (await import('/static/js/lessons.js')).BY_ID[{json.dumps(lesson_id)}].question.answer")
    values = frame.evaluate("() => [...document.querySelectorAll('.predict input[type=radio]')].map(i => i.value)")
    choice = answer if right else next(v for v in values if v != answer)
    frame.check(f".predict input[value={choice}]")
    return choice


def test_a_host_page_on_another_origin_embeds_lessons_by_link_and_by_oembed(browser):
    host = CoursePage()
    try:
        env = {"DP_EMBED_ORIGINS": host.origin, "DP_FRAME_ANCESTORS": f"'self' {host.origin}"}
        with live(env) as server:
            doc = requests.get(server.url + "/oembed", params={"url": server.url + "/lessons#train-vs-eval", "maxwidth": 390},
                               timeout=10).json()
            assert doc["title"] == TITLES["train-vs-eval"] and doc["width"] == 390
            host.serve_html(HOST.format(link=server.url + "/embed?lesson=inverted-scaling&id=c3", oembed=doc["html"],
                                        origin=json.dumps(server.url)))
            context, tab = new_tab(browser, width=1200, height=1000)
            try:
                tab.goto(host.url)
                frames = {"link": "lesson=inverted-scaling", "oembed": "lesson=train-vs-eval"}
                lessons_of = {"link": "inverted-scaling", "oembed": "train-vs-eval"}
                for which, needle in frames.items():
                    tab.wait_for_function(f"() => window.__host.received.some(m => m.which === '{which}' && m.type === '{PREFIX}ready')",
                                          timeout=LIVE)
                    ready = messages(tab, which, "ready")[0]
                    assert ready["lesson"] == lessons_of[which] and ready["title"] == TITLES[lessons_of[which]]
                frame = {w: next(f for f in tab.frames if n in f.url) for w, n in frames.items()}
                assert messages(tab, "link", "ready")[0]["id"] == "c3"
                for which, f in frame.items():  # the question, and nothing runs before the prediction
                    f.wait_for_function("() => window.__lesson && !window.__lesson.started", timeout=LIVE)
                    assert f.locator(".predict legend").is_visible()
                chosen = {"link": predict(frame["link"], "inverted-scaling", right=True),
                          "oembed": predict(frame["oembed"], "train-vs-eval", right=False)}
                for which in frame:
                    tab.wait_for_function(f"() => window.__host.received.some(m => m.which === '{which}' && m.type === '{PREFIX}verdict')",
                                          timeout=LIVE)
                    assert [m["answer"] for m in messages(tab, which, "prediction")] == [chosen[which]]
                    assert messages(tab, which, "prediction")[0]["lesson"] == lessons_of[which]
                    verdict = messages(tab, which, "verdict")[0]
                    assert verdict["lesson"] == lessons_of[which] and verdict["answer"] == chosen[which]
                    assert verdict["verdict"] == ("right" if which == "link" else "wrong")
                    assert "Measured" in verdict["evidence"]
                    assert frame[which].locator(f"[data-role=answer][data-verdict={verdict['verdict']}]").count() == 1
                    assert frame[which].evaluate("() => window.__lesson.problems") == []
                # the oEmbed frame is 390 px wide: the running lesson fits it
                assert frame["oembed"].evaluate("() => document.documentElement.scrollWidth") <= 390
                # the host may ask for what was done
                answer = tab.evaluate("""() => new Promise(resolve => {
                    const f = document.getElementById('link');
                    addEventListener('message', e => { if (e.data && e.data.request === 'g1') resolve(e.data); });
                    f.contentWindow.postMessage({type: 'dropout-playground:get', request: 'g1'}, new URL(f.src).origin);
                    setTimeout(() => resolve(null), 8000);
                })""")
                assert answer["type"] == PREFIX + "result" and answer["prediction"]["answer"] == chosen["link"]
                assert answer["verdict"]["verdict"] == "right"
                tab.screenshot(path=str(ARTIFACTS / "embed-lessons.png"), full_page=True)
                assert tab.errors == []
            finally:
                context.close()
    finally:
        host.close()
