"""Links that a visitor (or an attacker) mangles, in a real browser: a hash with a broken
%-escape opens the first lesson with a notice, and no page throws on it."""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

BROKEN = "#%E0%A4%A"  # decodeURIComponent throws "URI malformed" on it
LIVE = 60_000


def test_a_broken_lesson_hash_opens_the_first_lesson_with_a_notice(page, live_server):
    page.goto(live_server.url + "/lessons" + BROKEN)
    page.wait_for_function("() => window.__lesson && window.__lesson.id === 'thinned'", timeout=LIVE)
    notice = page.locator(".lesson .notice")
    assert notice.is_visible()
    assert notice.inner_text() == 'The link names no lesson we can read ("%E0%A4%A"); here is the first one.'
    page.screenshot(path=str(ARTIFACTS / "broken-hash-lessons.png"))
    assert page.errors == []


@pytest.mark.parametrize("path", ["/", "/compare", "/embed"])
def test_other_pages_read_a_broken_hash_without_throwing(page, live_server, path):
    page.goto(live_server.url + path + BROKEN)
    page.wait_for_load_state("load")
    page.wait_for_timeout(1500)  # the page's modules have run and parsed the hash
    assert page.errors == []
