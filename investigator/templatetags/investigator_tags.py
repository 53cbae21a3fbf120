"""Template helpers for data written by adversaries."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import template

from investigator.text import reveal as reveal_text

register = template.Library()


@register.filter
def http_url(value: object) -> str:
    """The URL if it is plain http(s), else "" — so javascript: and data: links never become hrefs."""
    text = str(value or "").strip()
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError:
        return ""
    return text if scheme in {"http", "https"} else ""


@register.filter
def reveal(value: object) -> str:
    """User text with direction controls and invisible characters made visible; autoescaping still applies."""
    return reveal_text(value)


@register.filter
def signal_label(value: str) -> str:
    from accounts.selectors import SIGNAL_LABELS

    return SIGNAL_LABELS.get(value, value)


@register.filter
def technique(tag: str) -> str:
    from investigator.disarm import technique_name

    return technique_name(tag)


@register.filter
def get_item(mapping: object, key: object) -> object:
    return mapping.get(key) if isinstance(mapping, dict) else None


@register.filter
def audit_summary(event: object) -> str:
    """An audit event in words (plain text; escaped where shown)."""
    data = getattr(event, "data", None) or {}
    action = getattr(event, "action", "")
    ids = data.get("ids") or []
    described = {
        "case.created": lambda: f"created the case “{data.get('title', '')}”",
        "case.items_added": lambda: f"added {len(ids)} {data.get('kind', 'item')}(s) (#{', #'.join(map(str, ids[:10]))})",
        "case.items_removed": lambda: f"removed {len(data.get('items', []))} item(s)",
        "case.item_annotated": lambda: (f"noted: {data['note']}" if data.get("note") else "changed tags")
                                       + (f" · tags {' '.join(data.get('tags') or [])}" if data.get("tags") else ""),
        "case.status": lambda: f"status {data.get('from')} → {data.get('to')}",
        "case.assigned": lambda: f"assigned to {data.get('assignee') or 'nobody'}",
        "case.member_added": lambda: f"added member {data.get('member')}",
        "review.decided": lambda: f"marked account #{getattr(event, 'subject_id', '')} {data.get('state')}: {data.get('reason')}",
        "export.network": lambda: f"exported the network of run #{data.get('run')} as {data.get('format')}",
        "user.created": lambda: f"created user {data.get('username')} ({data.get('role')})",
    }.get(action)
    try:
        return f"{action}: {described()}" if described else f"{action} {data}"
    except (KeyError, TypeError, ValueError):
        return f"{action} {data}"
