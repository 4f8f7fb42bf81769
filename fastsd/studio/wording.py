"""The CLI's advice in the page's own words: its buttons and boxes, not command-line flags."""

from __future__ import annotations

import re

START_OVER = 'tick "start over" and press "Start training"'
# (pattern, replacement), tried in order: the whole CLI phrases first, then single flags.
TRAIN_WORDS = (
    (r"continue with --resume, or start over with --overwrite", f'press "Resume" to continue, or {START_OVER}'),
    (r"train without --resume", 'press "Start training"'),
    (r"fastsd train \S+ --overwrite", START_OVER),
    (r"start over with --overwrite", START_OVER),
    (r"fastsd train \S+ --resume", 'press "Resume"'),
    (r"--resume and --overwrite contradict each other", '"Resume" and "start over" contradict each other'),
    (r"--resume", '"Resume"'),
    (r"--overwrite", '"start over"'),
    (r"pass --cpu", 'set "Cpu" to yes in the form'),
    (r"--cpu\b", '"Cpu"'),
)
PAGE_WORDS = {"train": TRAIN_WORDS}


def in_page_words(kind: str, text: str | None) -> str | None:
    """`text` (a job's error or hint) with the CLI's flags for `kind` named as the page's controls."""
    if not text:
        return text
    for pattern, words in PAGE_WORDS.get(kind, ()):
        text = re.sub(pattern, words, text)
    return text
