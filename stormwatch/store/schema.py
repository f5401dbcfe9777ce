"""The database schema: every statement that shapes a stormwatch database, grouped as the migrations apply them.

`migrations.py` names and orders these groups; a new column, table or index is a new group here and a new
migration there (never an edit of a group an earlier release has applied: files made by that release would
not get it). A test checks that a new database and a release-1 file upgraded in place end up alike.

Every row key is platform-qualified (`x:1578516068309794817`); native ids stay text. Times are ISO-8601 UTC
text, except the integer epoch seconds (`ts`, `first_ts`, `window_start`, ...) that buckets are computed from.
"""

from __future__ import annotations

# Accounts with at least this many posts in the window are indexed by their post count (tally_authors_busy).
BUSY_POSTS = 5

# Posts, accounts, what they say, campaign membership, and the collector's own records.
COLLECTED_ROWS = (
    "CREATE TABLE posts (uid TEXT PRIMARY KEY, platform TEXT NOT NULL, id TEXT NOT NULL, author_uid TEXT, "
    "created_at TEXT NOT NULL, ts INTEGER NOT NULL, text TEXT, lang TEXT, kind TEXT NOT NULL, ref_uid TEXT, "
    "url TEXT, like_count INTEGER, repost_count INTEGER, reply_count INTEGER, quote_count INTEGER, "
    "bookmark_count INTEGER, impression_count INTEGER, metrics_at TEXT, collected_at TEXT NOT NULL)",
    "CREATE TABLE accounts (uid TEXT PRIMARY KEY, platform TEXT NOT NULL, id TEXT NOT NULL, handle TEXT NOT NULL, "
    "name TEXT, followers_count INTEGER, following_count INTEGER, posts_count INTEGER, verified INTEGER, "
    "created_at TEXT, updated_at TEXT NOT NULL)",
    "CREATE INDEX idx_accounts_platform_handle ON accounts (platform, handle)",
    # Small link tables are clustered on their key: each lookup is one b-tree seek.
    "CREATE TABLE post_tags (post_uid TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (post_uid, tag)) WITHOUT ROWID",
    "CREATE TABLE post_mentions (post_uid TEXT NOT NULL, handle TEXT NOT NULL, "
    "PRIMARY KEY (post_uid, handle)) WITHOUT ROWID",
    # Membership carries copies of the post's immutable ts, platform, kind and author so campaign
    # metrics read one index instead of joining posts for every bucket.
    "CREATE TABLE campaign_posts (campaign TEXT NOT NULL, post_uid TEXT NOT NULL, ts INTEGER NOT NULL, "
    "platform TEXT NOT NULL, kind TEXT NOT NULL, author_uid TEXT, PRIMARY KEY (campaign, post_uid)) WITHOUT ROWID",
    # Covering: window scans (volume, totals, top accounts over any --since/--until) read this index alone.
    "CREATE INDEX campaign_posts_time ON campaign_posts (campaign, ts, platform, kind, author_uid)",
    "CREATE TABLE cursors (campaign TEXT NOT NULL, source TEXT NOT NULL, query TEXT NOT NULL, position TEXT, "
    "pending TEXT, since TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (campaign, source, query))",
    "CREATE TABLE runs (id INTEGER PRIMARY KEY, campaign TEXT NOT NULL, source TEXT NOT NULL, "
    "started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL, requests INTEGER DEFAULT 0, "
    "posts_read INTEGER DEFAULT 0, users_read INTEGER DEFAULT 0, posts_new INTEGER DEFAULT 0, "
    "posts_updated INTEGER DEFAULT 0, cost_usd REAL DEFAULT 0.0, error TEXT, rate_limit_reset TEXT, pid INTEGER)",
    "CREATE INDEX idx_runs_campaign_source_started_at ON runs (campaign, source, started_at)",
    "CREATE INDEX idx_runs_campaign_started_at ON runs (campaign, started_at)",
    # The counts belong to the query they were asked for.
    "CREATE TABLE volume_counts (campaign TEXT NOT NULL, source TEXT NOT NULL, query TEXT NOT NULL, "
    "bucket_start TEXT NOT NULL, bucket_end TEXT NOT NULL, count INTEGER NOT NULL, fetched_at TEXT NOT NULL, "
    "PRIMARY KEY (campaign, source, query, bucket_start)) WITHOUT ROWID",
)

# Running tallies of each campaign's registered storm window (store/tallies.py keeps them).
RUNNING_TALLIES = (
    "CREATE TABLE campaigns (campaign TEXT PRIMARY KEY, window_start INTEGER NOT NULL, window_end INTEGER NOT NULL)",
    "CREATE TABLE tally_minutes (campaign TEXT NOT NULL, platform TEXT NOT NULL, minute INTEGER NOT NULL, "
    "posts INTEGER NOT NULL, originals INTEGER NOT NULL, reposts INTEGER NOT NULL, quotes INTEGER NOT NULL, "
    "replies INTEGER NOT NULL, newcomers INTEGER NOT NULL, PRIMARY KEY (campaign, minute, platform)) WITHOUT ROWID",
    "CREATE TABLE tally_authors (campaign TEXT NOT NULL, author_uid TEXT NOT NULL, platform TEXT NOT NULL, "
    "first_ts INTEGER NOT NULL, posts INTEGER NOT NULL, engagement INTEGER NOT NULL, followers INTEGER NOT NULL, "
    "PRIMARY KEY (campaign, author_uid)) WITHOUT ROWID",
    # The dashboard asks for the busiest accounts every second; other orders are for reports, which can scan.
    # Most people post once or twice: indexing only the busy accounts keeps every other upsert off the index.
    f"CREATE INDEX tally_authors_busy ON tally_authors (campaign, posts) WHERE posts >= {BUSY_POSTS}",
    "CREATE TABLE tally_totals (campaign TEXT NOT NULL, platform TEXT NOT NULL, posts INTEGER NOT NULL, "
    "originals INTEGER NOT NULL, reposts INTEGER NOT NULL, quotes INTEGER NOT NULL, replies INTEGER NOT NULL, "
    "contributors INTEGER NOT NULL, potential_reach INTEGER NOT NULL, potential_impressions INTEGER NOT NULL, "
    "impressions INTEGER NOT NULL, engagement INTEGER NOT NULL, first_ts INTEGER, last_ts INTEGER, "
    "PRIMARY KEY (campaign, platform))",
    "CREATE TABLE tally_tags (campaign TEXT NOT NULL, tag TEXT NOT NULL, posts INTEGER NOT NULL, "
    "PRIMARY KEY (campaign, tag)) WITHOUT ROWID",
    "CREATE INDEX tally_tags_posts ON tally_tags (campaign, posts)",
    "CREATE TABLE tally_mentions (campaign TEXT NOT NULL, handle TEXT NOT NULL, posts INTEGER NOT NULL, "
    "PRIMARY KEY (campaign, handle)) WITHOUT ROWID",
)
TALLY_TABLES = ("tally_minutes", "tally_authors", "tally_totals", "tally_tags", "tally_mentions")

# Resources already billed on a billing day (X charges each post or user once a UTC day): store/billing.py.
BILLED_READS = (
    "CREATE TABLE billed_reads (day TEXT NOT NULL, uid TEXT NOT NULL, PRIMARY KEY (day, uid)) WITHOUT ROWID",
)

# Stable per-campaign pseudonyms for reports (store/pseudonyms.py).
PSEUDONYMS = (
    "CREATE TABLE pseudonyms (campaign TEXT NOT NULL, uid TEXT NOT NULL, label TEXT NOT NULL, "
    "PRIMARY KEY (campaign, uid), UNIQUE (campaign, label))",
)

# Alerts told to the organizers (store/alerts.py): one row per condition, so a restart never tells it twice.
# No URL is ever stored: only how many services were tried and reached, and what went wrong (service kinds).
ALERTS = (
    "CREATE TABLE alerts (id INTEGER PRIMARY KEY, campaign TEXT NOT NULL, kind TEXT NOT NULL, "
    "condition_key TEXT NOT NULL, text TEXT NOT NULL, sent_at TEXT NOT NULL, services_tried INTEGER, "
    "services_ok INTEGER, error TEXT, UNIQUE (campaign, condition_key))",
    "CREATE INDEX idx_alerts_campaign_kind_sent_at ON alerts (campaign, kind, sent_at)",
)

# Storm intelligence (issue 12): every trending list fetched for a campaign, as ranked (store/intel.py). Which
# entries are the campaign's tags is decided when reading (intel/trends.py), so a changed hashtag list still finds
# them. The fetch schedule itself is a cursor per (campaign, source, `trends <location>`).
TRENDS = (
    "CREATE TABLE trends (campaign TEXT NOT NULL, platform TEXT NOT NULL, location TEXT NOT NULL, woeid INTEGER, "
    "seen_at TEXT NOT NULL, rank INTEGER NOT NULL, name TEXT NOT NULL, volume INTEGER, "
    "PRIMARY KEY (campaign, platform, location, seen_at, rank)) WITHOUT ROWID",
)

# X's filtered stream (issue 16): each connection of a source's stream, its life and what it stored per campaign
# (store/streams.py). Gaps are the time between connections, derived when read.
STREAM_CONNECTIONS = (
    "CREATE TABLE stream_connections (id INTEGER PRIMARY KEY, source TEXT NOT NULL, opened_at TEXT NOT NULL, "
    "last_seen_at TEXT NOT NULL, closed_at TEXT, reason TEXT, posts TEXT NOT NULL DEFAULT '{}', pid INTEGER)",
    "CREATE INDEX stream_connections_by_source ON stream_connections (source, opened_at)",
)
# The rules other programs keep on the same app (left alone; `status` lists them), as seen at each connection:
# a JSON list of [value, tag].
STREAM_FOREIGN_RULES = ("ALTER TABLE stream_connections ADD COLUMN foreign_rules TEXT NOT NULL DEFAULT '[]'",)

# Supporters, not opponents (issue 17): a campaign post carrying one of the campaign's counter-hashtags is a hijack
# candidate, counted in the counter-hashtag figures and left out of every headline figure and tally. The counter-
# hashtags a campaign registered with its window decide it (`tallies.register`); membership carries the mark so that
# every window scan reads it from the covering index.
HIJACK_CANDIDATES = (
    "ALTER TABLE campaigns ADD COLUMN counter_tags TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE campaign_posts ADD COLUMN hijack INTEGER NOT NULL DEFAULT 0",
    "DROP INDEX campaign_posts_time",
    "CREATE INDEX campaign_posts_time ON campaign_posts (campaign, ts, platform, kind, author_uid, hijack)",
)

# What a run's spend was made of (issue 17): the cost of post reads, account reads, counts and trends requests,
# so that a storm's cost can be told by kind. Runs from before this migration have only their total (`cost_usd`).
RUN_COSTS = (
    "ALTER TABLE runs ADD COLUMN cost_posts_usd REAL NOT NULL DEFAULT 0.0",
    "ALTER TABLE runs ADD COLUMN cost_users_usd REAL NOT NULL DEFAULT 0.0",
    "ALTER TABLE runs ADD COLUMN cost_counts_usd REAL NOT NULL DEFAULT 0.0",
    "ALTER TABLE runs ADD COLUMN cost_trends_usd REAL NOT NULL DEFAULT 0.0",
)

# Which migrations a database has had (store/migrations.py), in the order they were applied (rowid order).
MIGRATION_LOG = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (migration_set TEXT NOT NULL, name TEXT NOT NULL, "
    "applied_at TEXT NOT NULL, PRIMARY KEY (migration_set, name))",
)
