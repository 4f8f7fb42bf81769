"""Face detection with the Haar cascades that ship in opencv-python: frontal, profile, mirrored profile."""

from __future__ import annotations

import threading

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive

FRONTAL = "haarcascade_frontalface_alt2.xml"
PROFILE = "haarcascade_profileface.xml"
DETECT_PIXELS = 600 * 600  # detect on a copy of at most this many pixels (by area: panoramas keep their faces)
MIN_FACE_FRACTION = 0.08  # smaller faces are not the subject (and the smallest scales cost the most time)
KEEP_FRACTION = 0.3  # drop faces smaller than this share of the largest one (background people, noise)
# Hits a face needs from neighbouring windows. Measured on skimage photos at scale step 1.1: real
# frontal faces gather 25-36 and lookalikes (wood grain, fur) at most 7; real profiles 6-14 and
# lookalikes at most 4.
MIN_NEIGHBOURS = {FRONTAL: 10, PROFILE: 6}


_per_thread = threading.local()  # OpenCV does not promise that one classifier is safe across threads


def load_opencv():
    """Import OpenCV and its data folder here, before any worker thread does: cv2's import-time
    bootstrap is not thread-safe (threads importing it at once saw `cv2` without `cv2.data`)."""
    import cv2
    import cv2.data  # noqa: F401 - the cascades' folder

    return cv2


def cascade(name: str):
    """This thread's OpenCV cascade classifier `name`, from the wheel's own data folder."""
    import cv2

    loaded = _per_thread.__dict__.setdefault("cascades", {})
    if name not in loaded:
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        if classifier.empty():
            from fastsd.errors import FastsdError

            raise FastsdError(f"OpenCV cascade {name} is missing from {cv2.data.haarcascades}",
                              "reinstall opencv-python-headless<5")
        loaded[name] = classifier
    return loaded[name]


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


def merge_boxes(boxes: list[Box], threshold: float = 0.5) -> list[Box]:
    """Merge boxes that mostly overlap (the same face seen by two cascades) into their union."""
    merged: list[Box] = []
    for box in sorted(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True):
        for i, kept in enumerate(merged):
            if _overlap(box, kept) >= threshold:
                merged[i] = (min(box[0], kept[0]), min(box[1], kept[1]), max(box[2], kept[2]), max(box[3], kept[3]))
                break
        else:
            merged.append(box)
    return merged


def detect_faces(rgb) -> list[Box]:
    """Face boxes in `rgb` (an H x W x 3 uint8 array), largest first, in its own pixel coordinates."""
    import cv2

    height, width = rgb.shape[:2]
    scale = min(1.0, (DETECT_PIXELS / (height * width)) ** 0.5)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        grey = cv2.resize(grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    small_w = grey.shape[1]
    min_side = max(20, round(min(grey.shape) * MIN_FACE_FRACTION))
    found: list[Box] = []

    def run(name: str, image, mirrored: bool) -> None:
        hits = cascade(name).detectMultiScale(image, scaleFactor=1.1, minNeighbors=MIN_NEIGHBOURS[name], minSize=(min_side, min_side))
        for x, y, w, h in (hits if len(hits) else []):
            x0 = small_w - (x + w) if mirrored else x
            found.append((int(x0), int(y), int(x0 + w), int(y + h)))

    run(FRONTAL, grey, False)
    run(PROFILE, grey, False)
    run(PROFILE, cv2.flip(grey, 1), True)  # the profile cascade only knows one side of the head
    faces = merge_boxes(found)
    if not faces:
        return []
    largest = max(b[2] - b[0] for b in faces)
    faces = [b for b in faces if (b[2] - b[0]) >= KEEP_FRACTION * largest]

    def to_original(v: int, limit: int) -> int:
        return min(limit, max(0, round(v / scale)))

    return [(to_original(b[0], width), to_original(b[1], height), to_original(b[2], width), to_original(b[3], height))
            for b in faces]
