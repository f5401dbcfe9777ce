"""Live feeds followed beside the scheduled jobs: one follower per streaming source (Bluesky's Jetstream).

A follower serves every campaign that collects from its source over one connection: it keeps the events
that carry any campaign's tags, and stores each campaign's share of a batch with that campaign's cursor
(the feed's position), so a restart resumes where the stored data ends. The scheduler starts the followers
(`start_followers`) next to its jobs; how often the jobs run is not their business.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .archive.writer import RawArchive
from .collector import Collector
from .config import CampaignConfig
from .errors import StormwatchError
from .sources import registry
from .sources.capabilities import Streaming
from .store import Store
from .times import Clock, from_epoch, iso_utc_seconds

log = logging.getLogger(__name__)


class StreamFollower:
    """Follows one streaming source's live feed for the campaigns that collect from it."""

    def __init__(self, source: Streaming, campaigns: Sequence[CampaignConfig], database: Path, *, clock: Clock,
                 archive: RawArchive | None = None) -> None:
        self.source = source
        self.campaigns = campaigns
        self.database = database
        self.clock = clock
        self.archive = archive

    def follow(self, stop: threading.Event) -> None:
        """Store the feed's posts for every campaign until `stop` is set (returns within about a second)."""
        if not self.campaigns:
            return
        source = self.source
        wanted = {c.name: source.stream_filter(c.hashtags) for c in self.campaigns}
        any_campaign = source.stream_filter([tag for c in self.campaigns for tag in c.hashtags])
        with Store.open(self.database) as store:
            now = self.clock.now()
            for campaign in self.campaigns:
                store.register_campaign(campaign.name, campaign.start, campaign.end)
            start = min(source.stream_cursor(store.get_cursor(c.name, source.name, source.stream_query), c, now)
                        for c in self.campaigns)

            def on_events(events: list[dict[str, Any]], position: int) -> None:
                for campaign in self.campaigns:
                    mine = [e for e in events if wanted[campaign.name](e)]
                    page = source.stream_page(campaign.name, mine, position)
                    if self.archive is not None and mine:
                        self.archive.write(campaign.name, page)
                    batch = registry.normalize_page(page)
                    for problem in batch.errors:
                        log.warning("%s/%s: %s", campaign.name, source.name, problem)
                    store.save_page(batch, campaign=campaign.name, cursor=page.cursor, run_id=None,
                                    collected_at=page.retrieved_at, requests=0)

            log.info("%s: following the live feed from %s", source.name,
                     iso_utc_seconds(from_epoch(start / 1_000_000)))
            source.stream(start, stop, on_events, wanted=any_campaign)


def followers(collector: Collector, campaigns: Sequence[CampaignConfig]) -> list[StreamFollower]:
    """A follower for each of the campaigns' sources that streams (sharing the collector's source objects).

    A source that cannot be built (a missing secret) is left to its scheduled job, which reports why.
    """
    found = []
    # A campaign's counter-hashtags are followed like its own tags, into the `~counter` companion's membership.
    campaigns = [*campaigns, *(c for c in (each.counter() for each in campaigns) if c is not None)]
    for name in dict.fromkeys(n for c in campaigns for n in c.sources):
        try:
            source = collector.source(name)
        except StormwatchError as exc:
            log.debug("%s: no live feed followed: %s", name, exc)
            continue
        if isinstance(source, Streaming):
            users = [c for c in campaigns if name in c.sources]
            found.append(StreamFollower(source, users, collector.config.storage.database, clock=collector.clock,
                                        archive=collector.archive))
    return found


def start_followers(collector: Collector, campaigns: Sequence[CampaignConfig],
                    stop: threading.Event) -> list[threading.Thread]:
    """Follow every streaming source of the campaigns in a thread of its own until `stop` is set."""
    threads = []
    for follower in followers(collector, campaigns):
        thread = threading.Thread(target=_follow, args=(follower, stop),
                                  name=f"stormwatch-{follower.source.name}-stream", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def _follow(follower: StreamFollower, stop: threading.Event) -> None:
    try:
        follower.follow(stop)
    except StormwatchError as exc:
        log.error("%s stream stopped: %s", follower.source.name, exc)
    except Exception:  # a bug must not pass silently: the scheduled jobs carry on
        log.exception("%s stream stopped", follower.source.name)
