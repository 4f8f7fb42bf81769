"""`fastsd caption SESSION` end to end: scan, caption in batches, check, score, retry, heatmaps, write."""

from __future__ import annotations

import random
import sys
import time
from dataclasses import replace

from fastsd.errors import FastsdError
from fastsd.layout import DataRoot
from fastsd.session import edit_session, session_paths
from fastsd.workloads.caption.dataset import ImageItem, is_readable_image, open_rgb, scan_session
from fastsd.workloads.caption.options import CaptionOptions, apply_template, parse_layers
from fastsd.workloads.caption.results import (
    CaptionRecord,
    write_caption_files,
    write_captions_jsonl,
)
from fastsd.workloads.train.record import require_prepared

EMPTY_RERUNS = 2  # an empty VLM caption is generated again, with sampling, this many times


def chunks(items: list, size: int):
    """`items` in consecutive lists of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm bar on stderr (a no-op when disabled)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=not enabled, leave=False)


def generate_captions(captioner, items: list[ImageItem], options: CaptionOptions, batch: int) -> dict[str, str]:
    """image name -> generated caption, batch by batch (seeded per batch for reproducibility)."""
    out = {}
    decoding = options.decoding
    with progress_bar(len(items), options.progress, "captioning") as bar:
        for index, group in enumerate(chunks(items, batch)):
            seed = None if decoding.seed is None else decoding.seed + index
            texts = captioner.caption([open_rgb(i.path) for i in group], decoding, seed=seed)
            out.update({i.path.name: t for i, t in zip(group, texts, strict=True)})
            bar.update(len(group))
    return out


def check_generated(captioner, items, generated: dict[str, str], options: CaptionOptions, choice, token: str,
                    batch: int, say) -> dict[str, list[str]]:
    """Check every VLM caption in `generated` (in place): runaway repeats cut, over-long ones trimmed, empty
    ones re-run with sampling; image name -> notes. A caption still empty after the re-runs is an error."""
    from fastsd.workloads.caption.checks import check_caption

    def wrap(text: str) -> str:
        return apply_template(options.template, text, token)

    notes: dict[str, list[str]] = {}
    for name, text in generated.items():
        checked = check_caption(text, choice.token_limit, wrap)
        generated[name], notes[name] = checked.text, checked.notes
    for attempt in range(1, EMPTY_RERUNS + 1):
        empty = [name for name, text in generated.items() if not text.strip()]
        if not empty:
            break
        decoding = options.decoding.with_sampling((options.decoding.seed or 0) + 7919 * attempt)
        for group in chunks(empty, batch):
            texts = captioner.caption([open_rgb(items[name].path) for name in group], decoding)
            for name, text in zip(group, texts, strict=True):
                checked = check_caption(text, choice.token_limit, wrap)
                generated[name] = checked.text
                notes[name] += [f"re-run with sampling (attempt {attempt})", *checked.notes]
    still = sorted(name for name, text in generated.items() if not text.strip())
    if still:
        raise FastsdError(f"the captioner wrote nothing usable for {', '.join(still)} after {EMPTY_RERUNS} re-runs",
                          "try another captioner (--captioner, --model) or --caption-style; nothing was written")
    for name, found in notes.items():
        if found:
            say(f"{name}: " + "; ".join(found))
    return notes


def score_records(matcher, items: dict[str, ImageItem], records: list[CaptionRecord], batch: int) -> None:
    """Fill itm/itc of every record (the text scored is the caption before --template)."""
    for group in chunks(records, batch):
        scores = matcher.score([open_rgb(items[r.image].path) for r in group], [r.generated or r.caption for r in group])
        for record, score in zip(group, scores, strict=True):
            record.itm, record.itc = score.itm, score.itc


def retry_low(captioner, matcher, items, records: list[CaptionRecord], options: CaptionOptions, batch: int) -> None:
    """Re-generate flagged model captions with sampling and new seeds, keeping the best-scoring one."""
    base_seed = options.decoding.seed or 0
    for attempt in range(1, options.retry_low + 1):
        low = [r for r in records if r.flagged and r.source == "model"]
        if not low:
            return
        decoding = options.decoding.with_sampling(base_seed + 1000 * attempt)
        for group in chunks(low, batch):
            images = [open_rgb(items[r.image].path) for r in group]
            texts = captioner.caption(images, decoding)
            for record, text, score in zip(group, texts, matcher.score(images, texts), strict=True):
                record.attempts = attempt
                if score.itm > record.itm:
                    record.generated, record.itm, record.itc = text, score.itm, score.itc
                    record.decoding = decoding.to_dict()
                record.flagged = record.itm < options.min_score


def heatmap_layers(captioner, options: CaptionOptions) -> list[int]:
    """The decoder layers of the heatmaps, checked against the loaded model before any captioning."""
    return parse_layers(options.layers, captioner.model.config.text_config.num_hidden_layers)


def draw_heatmaps(captioner, items, records: list[CaptionRecord], options: CaptionOptions, root_paths,
                  layers: list[int]) -> None:
    """Cross-attention heatmaps of every caption into the session's heatmaps folder."""
    from fastsd.workloads.caption.heatmaps import cross_attention_maps, write_heatmaps

    with progress_bar(len(records), options.progress, "heatmaps") as bar:
        for record in records:
            image = open_rgb(items[record.image].path)
            maps = cross_attention_maps(captioner, image, record.generated or record.caption, layers)
            grid, _ = write_heatmaps(root_paths.heatmaps, items[record.image].path.stem, image, maps)
            record.heatmap = grid.name
            bar.update(1)


def readable_items(items: list[ImageItem], say) -> list[ImageItem]:
    """The items whose image can be read; one line for each that cannot (the rest go on)."""
    good = [i for i in items if is_readable_image(i.path)]
    for item in items:
        if item not in good:
            say(f"skipped {item.path.name}: not a readable image (import it again with fastsd prepare)")
    if not good:
        raise FastsdError("none of the prepared images can be read", "import the photos again with fastsd prepare")
    return good


def run_caption(root: DataRoot, options: CaptionOptions, say=print) -> dict:
    """Caption session `options.session`; returns the summary (images, seconds, images/s, ...)."""
    from fastsd.workloads.caption.choice import choose_captioner
    from fastsd.workloads.caption.loading import (
        default_batch_size,
        load_captioner,
        load_matcher,
        pick_device,
    )
    from fastsd.workloads.caption.styles import STYLE_MAX_NEW

    options.validate()
    paths = session_paths(root, options.session)
    if options.decoding.sample and options.decoding.seed is None:
        options = replace(options, decoding=replace(options.decoding, seed=random.randrange(2**31)))
    with edit_session(root, options.session) as session:
        require_prepared(paths)  # a deleted prepared image is named, not silently left out
        choice = choose_captioner(root, options, session.family, session.model)
        if options.decoding.max_length is None:
            options = replace(options, decoding=replace(options.decoding, max_length=STYLE_MAX_NEW[choice.style]))
        scanned = readable_items(scan_session(paths), say)
        items = {i.path.name: i for i in scanned}
        todo = [i for i in scanned if options.overwrite or not i.hand_written]
        kept = [i for i in scanned if i not in todo]
        device = pick_device(options.device)
        batch = options.batch_size or default_batch_size(device)
        say(f"{len(scanned)} images: {len(todo)} to caption, {len(kept)} hand-written kept; "
            f"device {device}, batch size {batch}" + ("" if options.batch_size else " (default for this device)"))
        say(f"captioner {choice.model} ({choice.kind}), {choice.style} captions for a {choice.family} session "
            f"(its {choice.encoder} text encoder reads {choice.token_limit} tokens)")
        captioner = None
        if todo or options.heatmaps:
            captioner = load_captioner(root, choice.model, device, options.adapter, style=choice.style,
                                       token=session.token)
        layers = heatmap_layers(captioner, options) if options.heatmaps else []
        started = time.monotonic()
        generated = generate_captions(captioner, todo, options, batch) if todo else {}
        notes = {}
        if choice.kind != "blip" and generated:
            notes = check_generated(captioner, items, generated, options, choice, session.token, batch, say)
        seconds = time.monotonic() - started
        records = [CaptionRecord(image=i.path.name, caption=i.existing or "", source="hand-written") for i in kept]
        records += [CaptionRecord(image=name, caption="", source="model", model=choice.model, generated=text,
                                  decoding=options.decoding.to_dict(), adapter=options.adapter,
                                  captioner=choice.kind, style=choice.style, notes=notes.get(name, []))
                    for name, text in generated.items()]
        records.sort(key=lambda r: r.image)
        if options.score:
            matcher = load_matcher(root, options.score_model, device)
            score_records(matcher, items, records, batch)
            for record in records:
                record.flagged = options.min_score is not None and record.itm < options.min_score
            if options.retry_low:
                retry_low(captioner, matcher, items, records, options, batch)
        if options.heatmaps:
            draw_heatmaps(captioner, items, records, options, paths, layers)
        for record in records:
            if record.source == "model":
                record.caption = apply_template(options.template, record.generated, session.token)
        if any(r.source == "model" and not r.caption.strip() for r in records):
            raise FastsdError("the model produced an empty caption", "raise --min-length or try other decoding settings")
        write_caption_files(paths, records)
        write_captions_jsonl(paths, records)
        session.state.captioned_images = len(records)
    return summarise(records, len(todo), seconds, device, batch, options, choice)


def summarise(records: list[CaptionRecord], captioned: int, seconds: float, device: str, batch: int,
              options: CaptionOptions, choice) -> dict:
    """The run's figures for the summary line and --json."""
    return {
        "session": options.session,
        "images": len(records),
        "captioned": captioned,
        "kept": sum(r.source == "hand-written" for r in records),
        "flagged": sum(r.flagged for r in records),
        "seconds": round(seconds, 3),
        "images_per_second": round(captioned / seconds, 2) if seconds > 0 and captioned else 0.0,
        "device": device,
        "batch_size": batch,
        "model": choice.model,
        "captioner": choice.kind,
        "style": choice.style,
        "token_limit": choice.token_limit,
        "noted": sum(bool(r.notes) for r in records),
        "decoding": options.decoding.to_dict(),
        "captions": [r.to_json() for r in records],
    }
