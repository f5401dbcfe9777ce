"""The live page as people see it: a real uvicorn server (in a thread) and Chromium (Playwright) at a phone's and a
desktop's width; live updates through server-sent events when the collector stores posts; and what the page says
once the server is gone. Skipped where no `chromium` binary is found."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from stormwatch.collector import Collector
from stormwatch.config import load_config
from stormwatch.simulator.clock import ManualClock
from stormwatch.simulator.x import SimulatedPlatform
from stormwatch.store import Store
from stormwatch.web import in_thread, link_file, link_secret, prepare

from .conftest import T0, TOKEN, write_config

pytestmark = pytest.mark.slow

PHONE, DESKTOP = 390, 1280
SCREENSHOTS = os.environ.get("STORMWATCH_SCREENSHOTS")  # a folder to keep the screenshots in, to look at them
# How far the page is wider than the window, and every element whose box sticks out of it sideways.
OVERFLOW = """
() => ({
  page: document.documentElement.scrollWidth - window.innerWidth,
  out: [...document.querySelectorAll("main *")].filter(e => {
    const box = e.getBoundingClientRect();
    return box.width > 0 && (box.left < -1 || box.right > window.innerWidth + 1);
  }).map(e => `${e.tagName}.${e.className}: ${Math.round(e.getBoundingClientRect().left)}..` +
              `${Math.round(e.getBoundingClientRect().right)}`),
})
"""

WIDER_THAN_THEIR_BOX = """
() => [...document.querySelectorAll("body, body *")]
  .filter(e => e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0)
  .map(e => `${e.tagName}.${e.className} ${e.scrollWidth}>${e.clientWidth}`)
"""


def _posts_shown(page) -> int:
    return int(page.get_attribute('[data-figure="posts"]', "data-value"))


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
def test_the_page_is_whole_at_a_phones_and_a_desktops_width(collected, tmp_path: Path, browser, width: int) -> None:
    from .web_support import copied

    config = copied(collected[0], tmp_path)
    secret = link_secret(link_file(config))
    served = prepare(config, config.campaigns[0], secret, port=0)
    with in_thread(served):
        for scheme in ("light", "dark"):
            page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
            errors: list[str] = []
            page.on("console", lambda message, errors=errors: errors.append(message.text)
                    if message.type == "error" else None)
            page.goto(served.url)
            page.wait_for_selector("#mode")
            overflow = page.evaluate(OVERFLOW)
            wide = page.evaluate(WIDER_THAN_THEIR_BOX)  # what overflows, when something does
            assert overflow["page"] <= 0 and overflow["out"] == [], (overflow, wide)
            columns = page.evaluate("getComputedStyle(document.querySelector('.grid')).gridTemplateColumns")
            assert len(columns.split()) == (1 if width == PHONE else 3), columns
            assert page.is_visible('[data-figure="posts"]') and page.is_visible("figure svg")
            assert [e for e in errors if "favicon" not in e] == []  # no CSP violation, no script error
            if SCREENSHOTS:
                page.screenshot(path=str(Path(SCREENSHOTS) / f"live-{width}-{scheme}.png"), full_page=True)
            page.close()


def test_a_stored_post_appears_within_five_seconds_and_a_lost_server_is_said(small_storm, tmp_path: Path,
                                                                           browser, monkeypatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    clock = ManualClock(T0 + timedelta(minutes=30))
    with SimulatedPlatform(small_storm, clock, token=TOKEN) as server:
        config = load_config(write_config(tmp_path, server.url))
        collector = Collector(config, clock=clock)
        collector.run_once()
        secret = link_secret(link_file(config))
        served = prepare(config, config.campaigns[0], secret, port=0)
        page = browser.new_page(viewport={"width": PHONE, "height": 800})
        with in_thread(served):
            page.goto(served.url)
            before = _posts_shown(page)
            clock.advance(20 * 60)  # twenty storm minutes later, the collector's next run stores what came
            collector.run_once()
            collector.close()
            with Store.open_for_reading(config.storage.database) as store:
                stored = store.count_campaign_posts(config.campaigns[0].name)
            assert stored > before
            stored_at = time.monotonic()
            while _posts_shown(page) != stored and time.monotonic() - stored_at < 5.0:
                page.wait_for_timeout(100)  # the page's CSP forbids the string-evaluated `wait_for_function`
            assert _posts_shown(page) == stored, "not shown within 5 s"
            assert page.text_content("#mode") == "live updates"  # through server-sent events, not polling
        # the server is gone: the page says so, and that its figures may be old
        page.wait_for_selector("#connection:not([hidden])", timeout=20000)
        assert "Lost the server" in page.text_content("#connection")
        assert _posts_shown(page) == stored  # the last figures stay
        page.close()
