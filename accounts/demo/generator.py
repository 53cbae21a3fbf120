"""Plan the demo campaign in one process, render its files in parallel, write ground truth."""

from __future__ import annotations

import hashlib
import json
import lzma
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from accounts.demo import images

EPOCH = datetime(2018, 1, 1, tzinfo=UTC)
END = datetime(2019, 3, 31, tzinfo=UTC)
CAMPAIGN_HASHTAGS = ("hatetrump", "ihatetrump", "impeachtrump")
GENERAL_HASHTAGS = (
    "travel", "food", "sunset", "coffee", "love", "photography", "nature", "weekend", "family", "art", "fitness",
    "music", "instagood", "city", "beach", "dog", "cat", "friends", "tbt", "books", "politics", "news", "vote",
)
WORDS = (
    "what a day", "can't believe this", "finally home", "look at this", "so proud", "best weekend", "morning vibes",
    "new week", "missing this place", "throwback", "with the crew", "loving it", "no words", "just because",
    "this made me laugh", "thoughts?", "again and again", "worth it", "never forget", "small things",
)
FIRST_NAMES = ("anna", "mike", "sara", "tom", "julia", "dave", "nina", "li", "omar", "kate", "ivan", "rosa",
               "ben", "mia", "sam", "lucy", "raj", "eva", "leo", "zoe", "max", "ada", "noah", "ines")
LAST_NAMES = ("smith", "garcia", "kim", "novak", "rossi", "chen", "brown", "silva", "müller", "okafor", "haddad",
              "larsen", "kowalski", "tanaka", "dubois", "ortiz")

# The coordinated core: four groups with look-alike handles (19 accounts).
CORE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("dumpchump", ("dumpchump", "dumpchumpvote", "dump.chump2020", "dumpchump_resist", "the.dumpchump")),
    ("bluewave", ("bluewave.now", "bluewavenow2020", "blue.wave.resist", "bluewave_rising", "thebluewavenow")),
    ("impeachhim", ("impeachhim.now", "impeachhim2019", "impeach.him.today", "impeachhim_")),
    ("resistdaily", ("resistdaily", "resist.daily.news", "resistdaily2020", "resist.daily.us", "resistdailyus")),
)
BLOCK_GROUP = 0  # the five "dumpchump" accounts: created the same day, silent from the end of that month
BLOCK_CREATED = datetime(2018, 8, 3, 9, 12, tzinfo=UTC)
BLOCK_SILENT_FROM = datetime(2018, 8, 31, 23, 59, tzinfo=UTC)
MEME_TEXTS = (
    ("when he tweets", "at 3am again"), ("not my president", "never was"), ("impeach", "before it's too late"),
    ("the swamp", "got deeper"), ("resist", "persist"), ("you had one job", "just one"), ("fake news", "he says"),
    ("vote them out", "november is coming"), ("lock him up", "for real this time"), ("enough", "is enough"),
    ("shame", "on all of them"), ("wake up", "america"),
)
MEME_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "camera", "motorcycle", "moon", "coins")


@dataclass(frozen=True)
class DemoSpec:
    seed: int = 7
    scale: float = 1.0

    @property
    def organic_count(self) -> int:
        return max(20, round(2000 * self.scale))

    @property
    def suspicious_extra_count(self) -> int:
        """Suspicious accounts outside the coordinated core (350 in all with the 19 core)."""
        return max(10, round(331 * self.scale))

    @property
    def viral_count(self) -> int:
        return max(3, round(12 * self.scale))


@dataclass
class ImageSpec:
    kind: str  # scene | meme | viral | avatar
    seed: int
    ref: int = 0  # meme or viral index, or avatar source index
    alteration: str = "identical"
    quality: int = 88


@dataclass
class PostPlan:
    post_id: int
    taken_at: int
    caption: str
    likes: int
    comments: int
    images: list[ImageSpec]
    accessibility_caption: str = ""


@dataclass
class AccountPlan:
    username: str
    user_id: int
    full_name: str
    biography: str
    role: str  # organic | suspicious | core
    group: str | None
    created: datetime
    followers: int
    following: int
    avatar: ImageSpec
    avatar_taken_at: int
    external_url: str = ""
    posts: list[PostPlan] = field(default_factory=list)


def _rng(*parts: int) -> np.random.Generator:
    return np.random.default_rng([abs(int(p)) for p in parts])


def _user_id(created: datetime, rng: np.random.Generator) -> int:
    """Instagram ids grow with creation time; accounts made the same day get neighbouring ids."""
    seconds = (created - datetime(2010, 10, 6, tzinfo=UTC)).total_seconds()
    return int(1_000_000 + seconds * 4.2 + rng.integers(0, 4000))


def _diurnal_time(rng: np.random.Generator, start: datetime, end: datetime) -> datetime:
    day = start + timedelta(seconds=float(rng.uniform(0, max(1.0, (end - start).total_seconds()))))
    hour = int(np.clip(rng.normal(15, 4), 6, 23))  # people post mostly in the afternoon and evening
    return day.replace(hour=hour, minute=int(rng.integers(0, 60)), second=int(rng.integers(0, 60)))


def _caption(rng: np.random.Generator, campaign_probability: float) -> str:
    words = WORDS[int(rng.integers(len(WORDS)))]
    tags = list(rng.choice(GENERAL_HASHTAGS, size=int(rng.integers(0, 4)), replace=False))
    if rng.random() < campaign_probability:
        tags.append(CAMPAIGN_HASHTAGS[int(rng.integers(len(CAMPAIGN_HASHTAGS)))])
    return " ".join([words, *(f"#{t}" for t in tags)]).strip()


class _PostIds:
    """Instagram media ids: increasing with time, unique."""

    def __init__(self) -> None:
        self.used: set[int] = set()

    def make(self, taken_at: int, rng: np.random.Generator) -> int:
        while True:
            candidate = (taken_at - 1_300_000_000) * 1_000_000_000 + int(rng.integers(0, 999_999_999))
            if candidate not in self.used:
                self.used.add(candidate)
                return candidate


def _unique_times(times: list[datetime]) -> list[datetime]:
    """Instaloader names files by the second: one account cannot post twice in one second."""
    seen: set[int] = set()
    out = []
    for moment in sorted(times):
        stamp = int(moment.timestamp())
        while stamp in seen:
            stamp += 1
        seen.add(stamp)
        out.append(datetime.fromtimestamp(stamp, tz=UTC))
    return out


def _background_account(spec: DemoSpec, index: int, role: str, ids: _PostIds, viral: list[tuple[int, datetime]],
                        viral_sharers: dict[int, list[str]], taken: set[str]) -> AccountPlan:
    rng = _rng(spec.seed, 1 if role == "organic" else 2, index)
    first, last = FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))], LAST_NAMES[int(rng.integers(len(LAST_NAMES)))]
    username = f"{first}.{last}{index}" if role == "organic" else f"{first}_{last}_{index}x"
    username = username.replace("ü", "u")
    taken.add(username)
    if role == "organic":
        created = EPOCH - timedelta(days=float(rng.uniform(30, 2500)))
        campaign_probability = 0.08
        followers = int(rng.lognormal(5.5, 1.2))
    else:
        created = EPOCH + timedelta(days=float(rng.uniform(0, 300)))
        campaign_probability = 0.7
        followers = int(rng.lognormal(4.0, 1.0))
    plan = AccountPlan(
        username=username,
        user_id=_user_id(created, rng),
        full_name=f"{first.title()} {last.title()}",
        biography=str(rng.choice(["", "coffee & books", "dog person", "living my best life", "opinions are mine",
                                  "photographer", "teacher · runner", "🌊 resist 🌊", "news junkie"])),
        role=role,
        group=None,
        created=created,
        followers=followers,
        following=int(rng.lognormal(5.0, 0.8)),
        avatar=ImageSpec("scene", int(rng.integers(2**31))),
        avatar_taken_at=int((max(created, EPOCH) + timedelta(days=1)).timestamp()),
    )
    start = max(created, EPOCH)
    times = _unique_times([_diurnal_time(rng, start, END) for _ in range(int(rng.integers(3, 8)))])
    for moment in times:
        taken_at = int(moment.timestamp())
        picture_count = 2 if rng.random() < 0.05 else 1
        pictures = [ImageSpec("scene", int(rng.integers(2**31))) for _ in range(picture_count)]
        if rng.random() < 0.06:
            # A genuinely viral picture re-shared hours or days after it first appeared.
            viral_index = int(rng.integers(len(viral)))
            origin_time = viral[viral_index][1]
            moment = origin_time + timedelta(hours=float(rng.uniform(2, 24 * 20)))
            if moment > END:
                moment = END - timedelta(hours=float(rng.uniform(1, 100)))
            taken_at = int(moment.timestamp())
            while any(p.taken_at == taken_at for p in plan.posts):
                taken_at += 1
            kind = str(rng.choice(["identical", "recompress", "resize"]))
            pictures = [ImageSpec("viral", int(rng.integers(2**31)), viral_index, kind, int(rng.integers(70, 95)))]
            viral_sharers.setdefault(viral_index, []).append(username)
        plan.posts.append(PostPlan(
            post_id=ids.make(taken_at, rng),
            taken_at=taken_at,
            caption=_caption(rng, campaign_probability),
            likes=int(rng.lognormal(3.0, 1.0)),
            comments=int(rng.poisson(3)),
            images=pictures,
        ))
    plan.posts.sort(key=lambda p: p.taken_at)
    return plan


def _core_accounts(spec: DemoSpec, ids: _PostIds) -> tuple[list[AccountPlan], dict]:
    rng = _rng(spec.seed, 3)
    plans: list[AccountPlan] = []
    # Profile photos: one picture "stolen" from elsewhere (a known source) is reused by three
    # accounts in different groups; two accounts of the bluewave group share another.
    stolen_users = {CORE_GROUPS[0][1][1], CORE_GROUPS[2][1][0], CORE_GROUPS[3][1][2]}
    shared_users = {CORE_GROUPS[1][1][0], CORE_GROUPS[1][1][3]}
    memes_per_group = 3
    for group_index, (stem, usernames) in enumerate(CORE_GROUPS):
        for member_index, username in enumerate(usernames):
            if group_index == BLOCK_GROUP:
                created = BLOCK_CREATED + timedelta(minutes=float(rng.uniform(0, 600)))
            else:
                created = datetime(2018, 2 + 3 * group_index, 1, tzinfo=UTC) + timedelta(days=float(rng.uniform(0, 60)))
            if username in stolen_users:
                avatar = ImageSpec("avatar", int(rng.integers(2**31)), 0, str(rng.choice(["identical", "resize", "crop"])))
            elif username in shared_users:
                avatar = ImageSpec("avatar", int(rng.integers(2**31)), 1, "identical")
            else:
                avatar = ImageSpec("scene", int(rng.integers(2**31)))
            plans.append(AccountPlan(
                username=username,
                user_id=_user_id(created, rng),
                full_name=f"{stem.title()} {'USA' if member_index % 2 else 'Resist'}",
                biography=f"🇺🇸 #{CAMPAIGN_HASHTAGS[member_index % 3]} · we the people · {stem}",
                role="core",
                group=stem,
                created=created,
                followers=int(rng.integers(800, 9000)),
                following=int(rng.integers(300, 2000)),
                avatar=avatar,
                avatar_taken_at=int((created + timedelta(hours=1)).timestamp()),
                external_url=f"https://linktr.ee/{stem}",
            ))
    by_group: dict[str, list[AccountPlan]] = {}
    for plan in plans:
        by_group.setdefault(plan.group or "", []).append(plan)
    planted_waves = []
    for group_index, (stem, _) in enumerate(CORE_GROUPS):
        members = by_group[stem]
        if group_index == BLOCK_GROUP:
            wave_start, wave_end = BLOCK_CREATED + timedelta(days=1), BLOCK_SILENT_FROM - timedelta(days=1)
            wave_count = 7
        else:
            wave_start = max(m.created for m in members) + timedelta(days=2)
            wave_end = END - timedelta(days=10)
            wave_count = 10
        meme_indices = [group_index * memes_per_group + k for k in range(memes_per_group)]
        for wave in range(wave_count):
            fraction = wave / max(1, wave_count - 1)
            wave_time = wave_start + (wave_end - wave_start) * fraction + timedelta(hours=float(rng.uniform(-12, 12)))
            wave_time = min(max(wave_time, wave_start), wave_end)
            meme_index = meme_indices[wave % memes_per_group]
            # Interactions grow exponentially: doubling about every 45 days after the campaign starts.
            growth = 2 ** ((wave_time - datetime(2018, 3, 1, tzinfo=UTC)).days / 45)
            posters = []
            for member in members:
                if rng.random() < 0.1:
                    continue  # not every account joins every wave
                moment = wave_time + timedelta(minutes=float(rng.uniform(0, 25)))
                if group_index != BLOCK_GROUP and rng.random() < 0.12:
                    moment += timedelta(weeks=float(rng.uniform(2, 6)))  # the "weeks apart" reuse
                    moment = min(moment, END)
                taken_at = int(moment.timestamp())
                while any(p.taken_at == taken_at for p in member.posts):
                    taken_at += 1
                alteration = images.ALTERATIONS[int(rng.integers(len(images.ALTERATIONS)))]
                tags = " ".join(f"#{t}" for t in rng.permutation(CAMPAIGN_HASHTAGS))
                member.posts.append(PostPlan(
                    post_id=ids.make(taken_at, rng),
                    taken_at=taken_at,
                    caption=f"{MEME_TEXTS[meme_index % len(MEME_TEXTS)][0].capitalize()} {tags}",
                    likes=int(growth * rng.uniform(20, 40)),
                    comments=int(growth * rng.uniform(1, 4)),
                    images=[ImageSpec("meme", int(rng.integers(2**31)), meme_index, alteration, int(rng.integers(60, 95)))],
                ))
                posters.append({"username": member.username, "post_id": str(member.posts[-1].post_id),
                                "taken_at": taken_at, "alteration": alteration})
            planted_waves.append({"group": stem, "meme": meme_index, "time": int(wave_time.timestamp()), "posts": posters})
    for plan in plans:
        plan.posts.sort(key=lambda p: p.taken_at)
    truth = {
        "stolen_avatar": {"known_source": "known_sources/stolen_profile_photo.jpg", "accounts": sorted(stolen_users)},
        "shared_avatar": {"accounts": sorted(shared_users)},
        "waves": planted_waves,
    }
    return plans, truth


def _meme_parts(index: int) -> tuple[images.Image.Image, str, str]:
    rng = _rng(index, 99)
    base = images.photo_crop(rng, MEME_PHOTOS[index % len(MEME_PHOTOS)])
    top, bottom = MEME_TEXTS[index % len(MEME_TEXTS)]
    return base, top, bottom


def _avatar_source(index: int) -> images.Image.Image:
    rng = _rng(index, 77)
    return images.photo_crop(rng, ("astronaut", "chelsea")[index], 200)


def render_image(spec: ImageSpec, seed: int) -> bytes:
    rng = _rng(seed, spec.seed)
    if spec.kind == "scene":
        return images.jpeg_bytes(images.procedural_scene(rng), spec.quality)
    if spec.kind == "meme":
        return images.jpeg_bytes(images.alter(rng, _meme_parts(spec.ref), spec.alteration), spec.quality)
    if spec.kind == "viral":
        picture = images.procedural_scene(_rng(seed, 55, spec.ref))
        if spec.alteration == "resize":
            picture = picture.resize((240, 240))
        return images.jpeg_bytes(picture, spec.quality)
    if spec.kind == "avatar":
        picture = _avatar_source(spec.ref)
        if spec.alteration == "resize":
            picture = picture.resize((150, 150))
        elif spec.alteration == "crop":
            picture = picture.crop((8, 8, 192, 192))
        return images.jpeg_bytes(picture, spec.quality)
    raise ValueError(f"unknown image kind {spec.kind}")


def _stamp(taken_at: int) -> str:
    return datetime.fromtimestamp(taken_at, tz=UTC).strftime("%Y-%m-%d_%H-%M-%S")


def _write_xz(path: Path, payload: dict) -> None:
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    path.write_bytes(lzma.compress(data, check=lzma.CHECK_NONE, preset=1))


def _shortcode(media_id: int) -> str:
    from instaloader import Post

    return Post.mediaid_to_shortcode(media_id)


def write_account(plan: AccountPlan, outdir: Path, seed: int) -> int:
    """Write one Instaloader profile folder; return how many image files it holds."""
    folder = outdir / plan.username
    folder.mkdir(parents=True, exist_ok=True)
    version = {"version": "4.16", "node_type": "Profile"}
    profile = {
        "id": str(plan.user_id),
        "username": plan.username,
        "full_name": plan.full_name,
        "biography": plan.biography,
        "edge_followed_by": {"count": plan.followers},
        "edge_follow": {"count": plan.following},
        "edge_owner_to_timeline_media": {"count": len(plan.posts)},
        "is_private": False,
        "is_verified": False,
        "external_url": plan.external_url or None,
        "profile_pic_url": f"https://scontent.cdninstagram.com/{plan.user_id}.jpg",
        "profile_pic_url_hd": f"https://scontent.cdninstagram.com/{plan.user_id}_hd.jpg",
    }
    _write_xz(folder / f"{plan.username}_{plan.user_id}.json.xz", {"node": profile, "instaloader": version})
    (folder / "id").write_text(str(plan.user_id))
    (folder / f"{_stamp(plan.avatar_taken_at)}_UTC_profile_pic.jpg").write_bytes(render_image(plan.avatar, seed))
    written = 1
    for post in plan.posts:
        stamp = _stamp(post.taken_at)
        node = {
            "id": str(post.post_id),
            "shortcode": _shortcode(post.post_id),
            "__typename": "GraphSidecar" if len(post.images) > 1 else "GraphImage",
            "taken_at_timestamp": post.taken_at,
            "edge_media_to_caption": {"edges": [{"node": {"text": post.caption}}]} if post.caption else {"edges": []},
            "edge_media_preview_like": {"count": post.likes},
            "edge_media_to_comment": {"count": post.comments},
            "owner": {"id": str(plan.user_id), "username": plan.username},
            "accessibility_caption": post.accessibility_caption or None,
            "location": None,
            "is_video": False,
            "display_url": f"https://scontent.cdninstagram.com/p/{post.post_id}.jpg",
            "dimensions": {"height": images.SIZE, "width": images.SIZE},
        }
        if len(post.images) > 1:
            node["edge_sidecar_to_children"] = {"edges": [
                {"node": {"__typename": "GraphImage", "is_video": False,
                          "display_url": f"https://scontent.cdninstagram.com/p/{post.post_id}_{i}.jpg"}}
                for i in range(1, len(post.images) + 1)
            ]}
        _write_xz(folder / f"{stamp}_UTC.json.xz", {"node": node, "instaloader": {"version": "4.16", "node_type": "Post"}})
        if post.caption:
            (folder / f"{stamp}_UTC.txt").write_text(post.caption, encoding="utf-8")
        if len(post.images) == 1:
            (folder / f"{stamp}_UTC.jpg").write_bytes(render_image(post.images[0], seed))
        else:
            for i, picture in enumerate(post.images, start=1):
                (folder / f"{stamp}_UTC_{i}.jpg").write_bytes(render_image(picture, seed))
        written += len(post.images)
    return written


def _write_chunk(args: tuple[list[AccountPlan], str, int]) -> int:
    plans, outdir, seed = args
    return sum(write_account(plan, Path(outdir), seed) for plan in plans)


def plan_demo(spec: DemoSpec) -> tuple[list[AccountPlan], dict]:
    ids = _PostIds()
    rng = _rng(spec.seed, 4)
    viral = [(i, EPOCH + timedelta(days=float(rng.uniform(0, 400)))) for i in range(spec.viral_count)]
    viral_sharers: dict[int, list[str]] = {}
    taken: set[str] = set()
    core, core_truth = _core_accounts(spec, ids)
    organic = [_background_account(spec, i, "organic", ids, viral, viral_sharers, taken) for i in range(spec.organic_count)]
    suspicious = [_background_account(spec, i, "suspicious", ids, viral, viral_sharers, taken)
                  for i in range(spec.suspicious_extra_count)]
    plans = core + organic + suspicious
    truth = {
        **core_truth,
        "viral_images": [{"index": i, "first_seen": int(t.timestamp()), "shared_by": sorted(viral_sharers.get(i, []))}
                         for i, t in viral],
    }
    return plans, truth


def generate_demo(outdir: Path, spec: DemoSpec, *, progress: Callable[[int], None] | None = None,
                  processes: int | None = None) -> dict:
    """Write the campaign to ``outdir`` and return its ground truth (also written as ground_truth.json)."""
    outdir.mkdir(parents=True, exist_ok=True)
    plans, extra_truth = plan_demo(spec)
    known = outdir / "known_sources"
    known.mkdir(exist_ok=True)
    (known / "stolen_profile_photo.jpg").write_bytes(images.jpeg_bytes(_avatar_source(0), 95))
    chunks = [plans[i:i + 40] for i in range(0, len(plans), 40)]
    workers = processes or min(4, os.cpu_count() or 1)
    image_count = 0
    jobs = [(chunk, str(outdir), spec.seed) for chunk in chunks]
    results: Iterator[int]
    if workers > 1:
        pool = ProcessPoolExecutor(max_workers=workers)
        results = pool.map(_write_chunk, jobs)
    else:
        pool = None
        results = map(_write_chunk, jobs)
    try:
        for chunk, written in zip(chunks, results):
            image_count += written
            if progress:
                progress(len(chunk))
    finally:
        if pool is not None:
            pool.shutdown()
    truth = _ground_truth(spec, plans, extra_truth, image_count)
    (outdir / "ground_truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False, sort_keys=True))
    return truth


def _ground_truth(spec: DemoSpec, plans: list[AccountPlan], extra: dict, image_count: int) -> dict:
    def account(plan: AccountPlan) -> dict:
        return {"username": plan.username, "id": str(plan.user_id), "created": plan.created.isoformat(),
                "posts": len(plan.posts)}

    groups = []
    for stem, usernames in CORE_GROUPS:
        members = [p for p in plans if p.group == stem]
        assert [m.username for m in members] == list(usernames)
        groups.append({"name": stem, "stem": stem, "accounts": [account(m) for m in members]})
    block = [p for p in plans if p.group == CORE_GROUPS[BLOCK_GROUP][0]]
    last_post = max(post.taken_at for p in block for post in p.posts)
    return {
        "generator": {"seed": spec.seed, "scale": spec.scale, "format": "instaloader", "schema": 1},
        "counts": {
            "accounts": len(plans),
            "organic_accounts": sum(p.role == "organic" for p in plans),
            "suspicious_accounts": sum(p.role != "organic" for p in plans),
            "core_accounts": sum(p.role == "core" for p in plans),
            "posts": sum(len(p.posts) for p in plans),
            "images": image_count,
        },
        "campaign_hashtags": list(CAMPAIGN_HASHTAGS),
        "groups": groups,
        "creation_block": {
            "group": CORE_GROUPS[BLOCK_GROUP][0],
            "accounts": [p.username for p in block],
            "created_on": BLOCK_CREATED.date().isoformat(),
            "silent_from": BLOCK_SILENT_FROM.date().isoformat(),
            "last_post": datetime.fromtimestamp(last_post, tz=UTC).isoformat(),
        },
        "organic_accounts": sorted(p.username for p in plans if p.role == "organic"),
        "suspicious_accounts": sorted(p.username for p in plans if p.role != "organic"),
        **extra,
    }


def tree_digest(outdir: Path) -> str:
    """SHA-256 over every file's relative path and bytes: equal digests mean identical datasets."""
    digest = hashlib.sha256()
    for path in sorted(p for p in outdir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(outdir)).encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


__all__ = ["DemoSpec", "generate_demo", "plan_demo", "tree_digest", "asdict"]
