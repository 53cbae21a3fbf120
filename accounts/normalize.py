"""Normalised hashtags, mentions and links, so that detection can join on them."""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HASHTAG_RE = re.compile(r"(?<![\w&])#(\w{1,139})", re.UNICODE)
MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)")
URL_RE = re.compile(r"\bhttps?://[^\s<>\"'\u200b-\u200f\u2028-\u202e]+", re.IGNORECASE)
TRACKING_PARAMS = {"fbclid", "gclid", "igshid", "igsh", "mc_cid", "mc_eid", "ref_src", "ref_url", "si", "_ga", "yclid"}
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u202a\u202b\u202c\u202d\u202e"))


def clean_text(value: str | None) -> str:
    """Text as stored: NUL bytes removed (PostgreSQL refuses them), Unicode in NFC."""
    if not value:
        return ""
    return unicodedata.normalize("NFC", value.replace("\x00", ""))


def normalize_tag(tag: str) -> str:
    return unicodedata.normalize("NFKC", tag).translate(INVISIBLE).casefold().lstrip("#")


def extract_hashtags(text: str) -> list[str]:
    """Hashtags in order of appearance, normalised, duplicates kept once."""
    seen: dict[str, None] = {}
    for match in HASHTAG_RE.finditer(text or ""):
        tag = normalize_tag(match.group(1))
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


def extract_mentions(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for match in MENTION_RE.finditer(text or ""):
        seen.setdefault(match.group(1).lower(), None)
    return list(seen)


def extract_links(text: str) -> list[str]:
    links: dict[str, None] = {}
    for match in URL_RE.finditer(text or ""):
        url = normalize_url(match.group(0).rstrip(".,;:!?)]}"))
        if url:
            links.setdefault(url, None)
    return list(links)


@functools.lru_cache(maxsize=65_536)  # shared links recur across thousands of posts
def normalize_url(url: str | None) -> str:
    """Lower-case scheme and host, no default port, no fragment, no tracking parameters.

    Returns "" for anything that is not an http(s) URL with a host, so an empty or
    junk field can never become a shared "link" between unrelated accounts.
    t.co and other shorteners are kept as they are when no expansion is given.
    """
    if not url:
        return ""
    url = url.strip().translate(INVISIBLE)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not parts.hostname:
        return ""
    host = parts.hostname.lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    if port and not (scheme == "http" and port == 80) and not (scheme == "https" and port == 443):
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS]
    path = parts.path or "/"
    if path != "/" and path.endswith("/"):
        path = path.rstrip("/")
    return urlunsplit(("https" if scheme == "http" else scheme, host, path, urlencode(query), ""))


SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
SURROGATE_RE = re.compile("[\ud800-\udfff]")


def json_loads(text: str) -> object:
    """json.loads, with every lone UTF-16 surrogate (an escape such as \\ud800 without its pair: valid JSON that no
    UTF-8 text, and so no database, can hold) replaced by U+FFFD. Pairs are joined by the parser and kept."""
    value = json.loads(text)
    return _without_surrogates(value) if SURROGATE_ESCAPE_RE.search(text) else value


def _without_surrogates(value: object) -> object:
    if isinstance(value, str):
        return SURROGATE_RE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    return value
