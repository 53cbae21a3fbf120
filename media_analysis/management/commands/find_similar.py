from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.management.base import BaseCommand, CommandError, CommandParser

from media_analysis.hashing import UnreadableImage, compute_hashes, picture_paths
from media_analysis.selectors import media_similar


class _CommandLineUser(AnonymousUser):
    """Whoever can run manage.py has the database; the command reads as an admin would."""

    is_superuser = True
    is_active = True

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True


class Command(BaseCommand):
    help = ("Find stored copies and near-copies of images, with who posted each copy and when. A folder stands for "
            "every picture in it (and its subfolders). An image that cannot be read is reported and the others are "
            "still looked up; the command then exits with status 1.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="an image file or a folder of them")
        parser.add_argument("--max-distance", type=int, default=None,
                            help="whole-picture pHash Hamming distance, 0–64 (default: PHASH_MATCH_DISTANCE)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: object, **options: object) -> None:
        max_distance = options["max_distance"]
        if max_distance is not None and not 0 <= int(max_distance) <= 64:  # type: ignore[arg-type]
            raise CommandError("--max-distance must be between 0 and 64")
        results = [self._look_up(image, max_distance) for image in picture_paths(options["images"])]  # type: ignore[arg-type]
        if options["json"]:
            self.stdout.write(json.dumps(results, indent=2))
        else:
            for result in results:
                if "error" in result:
                    self.stderr.write(f"{result['image']}: {result['error']}")
                    continue
                self.stdout.write(f"{result['image']}: {len(result['matches'])} matches")
                for match in result["matches"]:
                    flag = " (first seen)" if match["first_seen"] else ""
                    if match["keypoints"] is not None:
                        flag = (f", {match['keypoints']} keypoints agree" if match["keypoints"] >= 0
                                else ", too plain for a keypoint check") + flag
                    self.stdout.write(f"  {match['sha256'][:12]} pHash {match['phash_distance']:>2} "
                                      f"PDQ {match['pdq_distance'] if match['pdq_distance'] is not None else '-':>3} "
                                      f"matched by {match['matched_by']} ({match['distance']} bits){flag}")
                    for post in match["posts"]:
                        self.stdout.write(f"      {post['posted_at']}  @{post['account']}  {post['post']}")
        failed = sum("error" in result for result in results)
        if failed:
            raise CommandError(f"{failed} of {len(results)} images could not be read")

    @staticmethod
    def _look_up(image: Path, max_distance: int | None) -> dict:
        if image.is_dir():  # only a folder with no pictures in it is left as itself
            return {"image": str(image), "error": "a folder with no pictures in it"}
        try:
            hashes = compute_hashes(image, max_pixels=settings.MEDIA_MAX_IMAGE_PIXELS)
        except UnreadableImage as exc:
            return {"image": str(image), "error": str(exc)}
        matches = media_similar(user=_CommandLineUser(), signature=hashes.signature, picture=image,
                                max_distance=max_distance)
        return {"image": str(image), "matches": [
            {
                "sha256": m.asset.sha256,
                "phash_distance": m.phash_distance,
                "pdq_distance": m.pdq_distance,
                "matched_by": m.via,
                "distance": m.distance,
                "first_seen": m.first_seen,
                "keypoints": m.keypoints,
                "avatar_of": m.avatar_of,
                "posts": [{"post": s.post_url, "account": s.handle, "platform": s.platform,
                           "posted_at": s.posted_at.isoformat()} for s in m.sightings],
            }
            for m in matches
        ]}

