"""The team's live page (`stormwatch serve`) through Starlette's TestClient: who may see it, what it shows, and that
it shows the same figures as `summary --json` with nobody named who is pseudonymized."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from stormwatch import metrics
from stormwatch.cli import main
from stormwatch.errors import StormwatchError
from stormwatch.store import Store
from stormwatch.web import build_app, is_loopback, link_file, link_secret, qr_text
from stormwatch.web.app import BURST, CONTENT_SECURITY_POLICY
from stormwatch.web.server import bind, page_url

from .web_support import copied, started

OWN = ("issaamro", "yashebron")


@pytest.fixture(scope="module")
def live_page(collected, tmp_path_factory: pytest.TempPathFactory):
    """A started live view over a copy of the collected storm, for the module (its refresh worker starts once):
    (config, LiveView, secret)."""
    config = copied(collected[0], tmp_path_factory.mktemp("web"))
    with started(config) as (live, _app, secret):
        yield config, live, secret


@pytest.fixture
def page(live_page):
    """The live page's guarded app (a new one: its own rate limits) over the module's view: (config, TestClient,
    secret)."""
    config, live, secret = live_page
    with TestClient(build_app(live, secret)) as client:
        yield config, client, secret


def test_without_the_secret_every_request_gets_the_same_404(page) -> None:
    _config, client, secret = page
    answers = [client.get(path) for path in ("/", "/feed.json", "/events", "/live.js", f"/{secret[:-1]}/",
                                             f"/{secret}x/", f"/{secret.upper()}/", "/../", f"/x/{secret}/",
                                             "/%00/", "/favicon.ico")]
    assert {a.status_code for a in answers} == {404}
    assert {a.content for a in answers} == {b"Not found.\n"}  # reveals nothing of what is behind
    assert client.post("/", content=b"x").status_code == 404
    assert client.get(f"/{secret}/").status_code == 200


def test_only_get_and_head_are_answered(page) -> None:
    _config, client, secret = page
    for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        answer = client.request(method, f"/{secret}/feed.json")
        assert answer.status_code == 405, method
        assert answer.headers["allow"] == "GET, HEAD"
    head = client.head(f"/{secret}/")
    assert head.status_code == 200 and head.content == b""


def test_every_answer_carries_the_security_headers(page) -> None:
    _config, client, secret = page
    for path in ("/", f"/{secret}/", f"/{secret}/feed.json", f"/{secret}/live.js", f"/{secret}/style.css"):
        answer = client.get(path)
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "script-src 'self'" in CONTENT_SECURITY_POLICY
    html = client.get(f"/{secret}/").text
    # no inline script, no style attribute, nothing fetched from elsewhere
    assert re.findall(r"<script[^>]*>", html) == ['<script src="live.js" defer>']
    assert " style=" not in html and "http://" not in html and "https://" not in html


def test_a_client_asking_too_often_is_told_to_wait(page) -> None:
    _config, client, secret = page
    answers = [client.get(f"/{secret}/feed.json").status_code for _ in range(BURST + 20)]
    assert answers[:BURST - 5].count(200) == BURST - 5
    assert 429 in answers


def test_the_figures_are_the_summary_figures(page, collected) -> None:
    config, client, secret = page
    feed = client.get(f"/{secret}/feed.json").json()
    campaign = config.campaigns[0]
    with Store.open_for_reading(config.storage.database) as store:
        expected = metrics.summary(store, campaign, metrics.campaign_window(campaign), config=config).to_json()
    for key in ("posts", "contributors", "potential_reach", "engagement", "impressions", "peak_posts_per_minute"):
        assert feed["figures"][key] == expected[key], key
    assert feed["figures"]["by_platform"] == {name: p["posts"] for name, p in expected["by_platform"].items()}
    html = client.get(f"/{secret}/").text
    for key in ("posts", "contributors", "potential_reach", "engagement", "peak_posts_per_minute"):
        assert re.search(rf'data-figure="{key}" data-value="{expected[key]}"><span class="value">'
                         rf"{expected[key]:,}</span>", html), key
    assert feed["figures"]["impressions"] is None or "impressions" in html


def test_summary_json_from_the_command_line_agrees(page, collected) -> None:
    config, client, secret = page
    source = collected[0]
    text = source.path.read_text(encoding="utf-8")
    path = Path(config.storage.database).parent / "config.toml"
    path.write_text(text.replace('database = "data/test.db"', f'database = "{config.storage.database}"'),
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["summary", "--json", "--config", str(path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    figures = client.get(f"/{secret}/feed.json").json()["figures"]
    for key in ("posts", "contributors", "potential_reach", "engagement", "impressions", "peak_posts_per_minute",
                "peak_minute"):
        assert figures[key] == summary[key] or (key == "peak_minute" and figures[key].replace("+00:00", "Z")
                                                 .startswith(summary[key][:16])), key


def test_no_pseudonymized_participant_is_named_in_the_page_or_the_feed(page) -> None:
    config, client, secret = page
    campaign = config.campaigns[0]
    html = client.get(f"/{secret}/").text
    feed = client.get(f"/{secret}/feed.json").text
    events = _first_event(client, secret)
    with Store.open_for_reading(config.storage.database) as store:
        window = metrics.campaign_window(campaign)
        shown = metrics.top_accounts(store, campaign.name, window, limit=50)
        latest = metrics.latest_posts(store, campaign.name, window, limit=50)
        post_ids = [row[0] for row in store.conn.execute(
            "SELECT p.id FROM posts p JOIN campaign_posts c ON c.post_uid = p.uid WHERE c.campaign = ?",
            (campaign.name,))]
    hidden = {a.handle for a in shown if a.followers < config.report.pseudonymize_below
              and a.handle.casefold() not in OWN}
    hidden |= {p.handle for p in latest if p.handle and (p.followers or 0) < config.report.pseudonymize_below
               and p.handle.casefold() not in OWN}
    assert hidden, "the storm has small accounts to hide"
    assert "participant-" in html  # they are there, under their labels
    for text in (html, feed, events):
        for handle in hidden:
            assert not re.search(rf"(?<![\w-]){re.escape(handle)}(?![\w-])", text, re.IGNORECASE), handle
        for native in post_ids:
            assert native not in text
        assert "x.com/" not in text and "twitter.com/" not in text and "bsky.app/profile" not in text


def _first_event(client: TestClient, secret: str) -> str:
    with client.stream("GET", f"/{secret}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                return line
    raise AssertionError("no event")


def test_the_event_stream_sends_the_view_at_once(page) -> None:
    _config, client, secret = page
    data = json.loads(_first_event(client, secret)[len("data: "):])
    assert data["version"] and "<section" in data["html"] and data["figures"]["posts"] > 0


def test_public_names_put_a_red_banner_on_the_page(collected, tmp_path: Path) -> None:
    config = copied(collected[0], tmp_path)
    with started(config, names="public") as (_live, app, secret), TestClient(app) as client:
        html = client.get(f"/{secret}/").text
    assert '<p class="banner public" role="alert">Names are public' in html
    assert "participant-" not in html


def test_charts_have_a_text_alternative_with_their_key_figures(page) -> None:
    _config, client, secret = page
    html = client.get(f"/{secret}/").text
    alternatives = re.findall(r'<svg viewBox="0 0 600 140"[^>]*aria-label="([^"]+)"', html)
    assert len(alternatives) == 2
    assert all("busiest" in text or "no complete minute" in text for text in alternatives)
    assert "Posts per 5 minutes, whole storm so far" in html or "Posts per 2 minutes, whole storm so far" in html


# --- the link -------------------------------------------------------------------------------------------------


def test_the_link_secret_is_kept_owner_only_and_changes_on_request(collected, tmp_path: Path) -> None:
    config = copied(collected[0], tmp_path)
    path = link_file(config)
    first = link_secret(path)
    assert len(first) >= 22 and link_secret(path) == first  # 128 bits at least, kept between runs
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)
    assert link_secret(path) == first and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = link_secret(path, new=True)
    assert second != first and link_secret(path) == second
    with started(config) as (_live, app, secret), TestClient(app) as client:
        assert secret == second
        assert client.get(f"/{first}/").status_code == 404
    path.write_text("short\n", encoding="ascii")
    with pytest.raises(StormwatchError, match="--new-link"):
        link_secret(path)


def test_addresses_links_and_the_qr_code() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    assert page_url("127.0.0.1", 8765, "abc") == "http://127.0.0.1:8765/abc/"
    assert page_url("::1", 8765, "abc") == "http://[::1]:8765/abc/"
    code = qr_text("http://127.0.0.1:8765/" + "a" * 32 + "/")
    assert code.count("\n") > 10 and ("█" in code or "▀" in code)
    sock = bind("127.0.0.1", 0)
    try:
        with pytest.raises(StormwatchError, match="cannot listen there"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()
