"""Synthetic Twitter/X information-operations archives (users CSV + tweets CSV) with coordination in them:
groups of accounts posting the same or slightly altered messages and links minutes apart, retweet
bursts, shared links, and an organic background with everyday duplicates ("good morning").

Used by the benchmarks (a million tweets in seconds, constant memory) and by the tests that compare
the detection with coordination-network-toolkit. Deterministic for a seed.
"""

from __future__ import annotations

import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

TWEET_COLUMNS = [
    "tweetid", "userid", "user_display_name", "user_screen_name", "user_reported_location", "user_profile_description",
    "user_profile_url", "follower_count", "following_count", "account_creation_date", "account_language",
    "tweet_language", "tweet_text", "tweet_time", "tweet_client_name", "in_reply_to_userid", "in_reply_to_tweetid",
    "quoted_tweet_tweetid", "is_retweet", "retweet_userid", "retweet_tweetid", "latitude", "longitude", "quote_count",
    "reply_count", "like_count", "retweet_count", "hashtags", "urls", "user_mentions", "poll_choices",
]
USER_COLUMNS = ["userid", "user_display_name", "user_screen_name", "user_reported_location", "user_profile_description",
                "user_profile_url", "follower_count", "following_count", "account_creation_date", "account_language"]
START = datetime(2019, 3, 1, tzinfo=UTC)
EVERYDAY = ("good morning everyone", "happy friday", "thank you so much", "so true", "this is amazing",
            "cannot believe this", "what a day")
HASHTAGS = ("news", "vote", "usa", "maga", "resist", "breaking", "truth", "election")


def _vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))))
    return sorted(words)


def write_io_archive(folder: Path, *, tweets: int, accounts: int, seed: int = 1, days: int = 30,
                     group_share: float = 0.1, link_rate: float = 0.25, retweet_rate: float = 0.15) -> dict:
    """Write `tweets` tweets by `accounts` accounts; returns the planted groups ({group: [userid, …]})."""
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng)
    domains = [f"site{n}.example" for n in range(400)]
    users = [f"u{n:07d}" for n in range(accounts)]
    grouped = users[: int(accounts * group_share)]
    groups: dict[str, list[str]] = {}
    index = 0
    while index < len(grouped):
        size = rng.randint(5, 20)
        groups[f"g{len(groups)}"] = grouped[index:index + size]
        index += size
    folder.mkdir(parents=True, exist_ok=True)
    followers: dict[str, int] = {}  # each account's follower count at the start; one more every day
    with (folder / "synthetic_users_csv_hashed.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(USER_COLUMNS)
        for n, user in enumerate(users):
            created = START - timedelta(days=rng.randint(10, 2000))
            followers[user] = rng.randint(0, 5000)
            writer.writerow([user, f"User {n}", f"user_{n}", "", "", "", followers[user], rng.randint(0, 2000),
                             created.date().isoformat(), "en"])
    span = days * 86400
    recent: list[tuple[int, str]] = []  # (tweet id, author) of recent originals, for retweets
    tweet_id = 10**18
    written = 0
    with (folder / "synthetic_tweets_csv_hashed.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(TWEET_COLUMNS)

        def emit(user: str, when: int, text: str, urls: list[str], tags: list[str], retweet: tuple[int, str] | None):
            nonlocal tweet_id, written
            tweet_id += rng.randint(1, 1000)
            moment = (START + timedelta(seconds=min(when, span - 1))).strftime("%Y-%m-%d %H:%M")
            writer.writerow([
                tweet_id, user, "", "", "", "", "", followers[user] + when // 86400, 100, "", "en", "en", text, moment, "Web", "",
                "", "", str(retweet is not None), retweet[1] if retweet else "", retweet[0] if retweet else "", "", "",
                0, 0, rng.randint(0, 50), rng.randint(0, 20), "[" + ", ".join(tags) + "]",
                "[" + ", ".join(f"'{u}'" for u in urls) + "]", "[]", "",
            ])
            written += 1
            if retweet is None and rng.random() < 0.05:
                recent.append((tweet_id, user))
                if len(recent) > 500:
                    recent.pop(0)

        while written < tweets:
            when = rng.randrange(span)
            roll = rng.random()
            if roll < 0.03 and groups and recent:
                # An amplification burst: a group retweets one original within a minute or two.
                original = rng.choice(recent)
                for member in groups[rng.choice(list(groups))]:
                    if rng.random() < 0.3 or written >= tweets:
                        continue
                    emit(member, when + rng.randint(0, 120), f"RT @{original[1]}: retweeted", [], [], original)
            elif roll < 0.08 and groups:
                # A campaign burst: most of a group posts one message (some altered) and link within minutes.
                members = groups[rng.choice(list(groups))]
                words = rng.choices(vocabulary, k=rng.randint(10, 16))
                tags = rng.sample(HASHTAGS, k=2)
                url = f"https://{rng.choice(domains)}/story/{rng.randrange(10**6)}"
                for member in members:
                    if rng.random() < 0.2 or written >= tweets:
                        continue
                    mine = list(words)
                    if rng.random() < 0.4:
                        mine[rng.randrange(len(mine))] = rng.choice(vocabulary)  # one word changed
                    text = " ".join(mine) + " " + " ".join(f"#{t}" for t in tags)
                    emit(member, when + rng.randint(0, 300), text, [url], tags, None)
            elif roll < 0.08 + retweet_rate and recent:
                original = rng.choice(recent)
                emit(rng.choice(users), when, f"RT @{original[1]}: retweeted", [], [], original)
            else:
                user = rng.choice(users)
                if rng.random() < 0.03:
                    text = rng.choice(EVERYDAY)
                else:
                    text = " ".join(rng.choices(vocabulary, k=rng.randint(6, 18)))
                    if rng.random() < 0.1:
                        text = f"@{rng.choice(users)} {text}"
                urls = []
                if rng.random() < link_rate:
                    urls = [f"https://{domains[min(int(rng.paretovariate(1.2)) - 1, len(domains) - 1)]}/"
                            f"{rng.randrange(50)}"]
                tags = rng.sample(HASHTAGS, k=rng.randint(0, 2))
                emit(user, when, text, urls, tags, None)
    return groups
