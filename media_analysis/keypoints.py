"""A second opinion for matches that rest on one coarse signature alone: the central region, or the
whole-picture pHash near its threshold (media_analysis.matching.media_match says when).

The central-region signature (media_analysis.matching) is what finds cropped and captioned copies, but it is a
coarse summary: among N unrelated pictures about 3×10⁻⁵ of the N²/2 pairs come within its threshold
(benchmarks/bench_matching.py --distractors), so in a large collection every picture would gain a few false
copies. Where the central region is the only signature that agrees, the two pictures are therefore compared
point by point: ORB keypoints (OpenCV) matched between them, and a RANSAC fit of one similarity transform
(shift, scale, rotation). A real copy, however cropped, captioned, recoloured or recompressed, shows many
keypoints that one transform carries onto the other picture, and that transform is a copy's: no rotation,
about the same width, the centre carried near the centre. Unrelated pictures show a handful at best.

The whole-picture pHash has a tail of its own: in the demo's 14,400 pictures, about a hundred unrelated pairs
sit at 8–10 bits (its threshold is 10), while real copies at that distance share 66 keypoints or more.

Measured on the labelled set (benchmarks/bench_matching.py): real copies matched through the central region
have at least 12 such keypoints in all but 3 of 487 pairs at 26 bits (those three are nearly flat pictures);
unrelated pairs that the central region matched have 0–10.

Two pictures with almost no texture (a flat colour, a soft gradient) have too few keypoints for the check to
say anything, and so do a plain picture and a much larger textured one; the signature's verdict then stands.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

WORKING_SIDE = 480  # both pictures are compared at this size (longest side), so a resized copy meets its original at one scale
FEATURES = 2000  # ORB keypoints per picture: with fewer, the corners of caption text crowd out the picture's own
# A picture with fewer keypoints than this in its central region (the middle 70% each way, where the signature
# matched: captions and banners along the edges bring keypoints of their own) is plain there. Two plain
# pictures cannot be told apart by keypoints, and neither can a plain picture and a larger textured one
# (a copy shrunk to under SHRUNK of the other's size loses its fine detail): the signature's verdict stands.
# A plain picture beside a textured one of about its size is not its copy.
PLAIN = 25
SHRUNK = 0.7
RATIO = 0.8  # Lowe's ratio test: a keypoint's best match must be clearly better than its second best
REPROJECTION_PIXELS = 5.0
# A copy's transform: no rotation, the same width give or take a crop of 10% a side (or a resize after it),
# and the picture's centre carried to within a fifth of the other's size from its centre (a banner or a
# one-sided crop shifts it a little). A photograph pasted into two different pictures fails the last test.
MAX_ROTATION_DEGREES = 5.0
WIDTH_RATIO = (0.7, 1 / 0.7)
MAX_CENTRE_SHIFT = 0.2

UNDECIDED = -1  # stored instead of a count when a picture has too few keypoints to tell


@dataclass(frozen=True)
class Keypoints:
    points: np.ndarray  # (n, 2) float32, x and y in the working-size picture
    descriptors: np.ndarray  # (n, 32) uint8
    width: int
    height: int
    side: int  # the picture's longest side as stored, before any reduced decoding or the working size

    def __len__(self) -> int:
        return len(self.points)

    @property
    def central(self) -> int:
        """Keypoints in the middle 70% of the picture each way."""
        x, y = self.points[:, 0] / self.width, self.points[:, 1] / self.height
        return int(((abs(x - 0.5) <= 0.35) & (abs(y - 0.5) <= 0.35)).sum())


_local = threading.local()  # one detector per thread: creating it costs more than a small picture's keypoints


def keypoints(image: Image.Image, *, mirrored: bool = False, side: int | None = None) -> Keypoints:
    """ORB keypoints of a picture (or of its mirror image) at the working size. `side` is the stored picture's
    longest side when `image` was decoded at reduced size."""
    grey = np.asarray(ImageOps.grayscale(image))
    scale = WORKING_SIDE / max(grey.shape)
    size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if mirrored:
        grey = np.ascontiguousarray(grey[:, ::-1])
    if not hasattr(_local, "orb"):
        _local.orb = cv2.ORB_create(nfeatures=FEATURES)
    found, descriptors = _local.orb.detectAndCompute(grey, None)
    side = side or max(image.size)
    if descriptors is None:
        return Keypoints(np.empty((0, 2), np.float32), np.empty((0, 32), np.uint8), size[0], size[1], side)
    return Keypoints(np.float32([k.pt for k in found]).reshape(-1, 2), descriptors, size[0], size[1], side)


def _matcher() -> cv2.FlannBasedMatcher:
    """Nearest descriptors by locality-sensitive hashing (FLANN's LSH index for binary descriptors): 2.4× faster
    than comparing every pair at 2,000 keypoints a picture, with as many good matches."""
    return cv2.FlannBasedMatcher({"algorithm": 6, "table_number": 6, "key_size": 12, "multi_probe_level": 1},
                                 {"checks": 32})


def _carried(source: Keypoints, target: Keypoints) -> int:
    """How many of source's keypoints one copy-like transform carries onto matching keypoints of target
    (0 when the best transform is not a copy's)."""
    if len(source) < 3 or len(target) < 3:
        return 0
    pairs = _matcher().knnMatch(source.descriptors, target.descriptors, k=2)
    good = [pair[0] for pair in pairs if len(pair) == 2 and pair[0].distance < RATIO * pair[1].distance]
    if len(good) < 3:
        return 0
    src = source.points[[m.queryIdx for m in good]]
    dst = target.points[[m.trainIdx for m in good]]
    transform, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                     ransacReprojThreshold=REPROJECTION_PIXELS, maxIters=2000,
                                                     confidence=0.99, refineIters=10)
    if transform is None:
        return 0
    scale = math.hypot(transform[0, 0], transform[1, 0])
    rotation = math.degrees(math.atan2(transform[1, 0], transform[0, 0]))
    width_ratio = scale * source.width / target.width
    centre_x, centre_y = transform @ np.array([source.width / 2, source.height / 2, 1.0])
    shift = math.hypot(centre_x / target.width - 0.5, centre_y / target.height - 0.5)
    if abs(rotation) > MAX_ROTATION_DEGREES or not WIDTH_RATIO[0] <= width_ratio <= WIDTH_RATIO[1] or shift > MAX_CENTRE_SHIFT:
        return 0
    return int(inliers.sum())


def agreement(a: Keypoints, b: Keypoints) -> int:
    """Keypoints that a copy's transform carries from one picture onto the other, the better of the two ways
    round; UNDECIDED when keypoints cannot tell (see PLAIN)."""
    plain = [k for k in (a, b) if k.central < PLAIN]
    if len(plain) == 2:
        return UNDECIDED
    if plain and plain[0].side < SHRUNK * (b if plain[0] is a else a).side:
        return UNDECIDED
    cv2.setRNGSeed(0x5EED)  # LSH tables and RANSAC draw at random: the same pair always gets the same count
    return max(_carried(a, b), _carried(b, a))


def confirmed(count: int, minimum: int, strict: bool = False) -> bool:
    """Whether an agreement count confirms a central-region match: enough keypoints, or too few to tell unless
    strict (a match by a moved region, itself one guess among thirty-two)."""
    return count >= minimum or (count == UNDECIDED and not strict)
