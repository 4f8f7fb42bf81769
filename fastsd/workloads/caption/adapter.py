"""LoRA adapters on BLIP's text decoder (peft): train on image/caption pairs, merge for captioning."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError, bad_input
from fastsd.fsutil import atomic_path, jsonl_lines

# Attention and MLP projections of the text decoder only: the vision encoder stays frozen.
TARGET_MODULES = r".*text_decoder\..*\.(query|key|value|dense)$"
INFO_FILE = "fastsd-adapter.json"


@dataclass(frozen=True)
class Pair:
    """One training example: an image file and the caption it should get."""

    image: Path
    caption: str


def read_pairs(path: Path) -> list[Pair]:
    """The pairs of a pairs.jsonl ({"image": file, "caption": text} per line), every problem at once."""
    path = Path(path)
    if not path.is_file():
        raise bad_input(f"--pairs {path}: no such file", 'write one JSON line per image: {"image": "a.png", "caption": "..."}')
    pairs, problems = [], []
    for number, row in jsonl_lines(path):
        if row is None or not isinstance(row.get("image"), str) or not isinstance(row.get("caption"), str):
            problems.append(f"{path}:{number}: needs a JSON object with string fields image and caption")
            continue
        image = (path.parent / row["image"]).resolve()
        if not image.is_file():
            problems.append(f"{path}:{number}: image {row['image']} not found (paths are relative to {path.parent})")
        elif not row["caption"].strip():
            problems.append(f"{path}:{number}: empty caption")
        else:
            pairs.append(Pair(image, " ".join(row["caption"].split())))
    if problems:
        raise bad_input("bad training pairs:\n  " + "\n  ".join(problems[:20]))
    if not pairs:
        raise bad_input(f"--pairs {path} holds no pairs", 'one JSON line per image: {"image": "a.png", "caption": "..."}')
    return pairs


def trainable_share(model) -> tuple[int, int]:
    """(trainable parameters, all parameters) of `model`."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def caption_batch(processor, captions: list[str], bos_id: int, device: str):
    """Decoder input ids (first token = BOS), attention mask and labels (padding ignored)."""
    text = processor.tokenizer(captions, padding=True, return_tensors="pt").to(device)
    ids = text["input_ids"].clone()
    ids[:, 0] = bos_id
    labels = ids.masked_fill(text["attention_mask"] == 0, -100)
    return ids, text["attention_mask"], labels


def caption_loss(model, image_embeds, ids, mask, labels):
    """Mean next-token cross-entropy of the captions given the image embeddings."""
    from torch.nn.functional import cross_entropy

    logits = model.text_decoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=image_embeds).logits
    return cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)


@dataclass(frozen=True)
class TrainResult:
    """What training an adapter did."""

    out: Path
    steps: int
    trainable: int
    total: int
    first_loss: float
    last_loss: float
    seconds: float

    @property
    def share(self) -> float:
        return self.trainable / self.total


def train_adapter(captioner, pairs: list[Pair], out: Path, *, lang: str, steps: int = 200, lr: float = 1e-4,
                  rank: int = 8, batch_size: int = 8, seed: int = 0, progress=None) -> TrainResult:
    """Train a LoRA on the text decoder of `captioner` so it writes `pairs`' captions; save to `out`."""
    import torch
    from peft import LoraConfig, get_peft_model

    from fastsd.workloads.caption.dataset import open_rgb

    torch.manual_seed(seed)
    model = captioner.model
    bos = model.config.text_config.bos_token_id
    with torch.inference_mode():  # the vision encoder is frozen: embed every image once
        embeds = torch.cat([model.vision_model(pixel_values=captioner.pixel_values([open_rgb(p.image)])).last_hidden_state
                            for p in pairs]).float()
    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=TARGET_MODULES)
    peft_model = get_peft_model(model.float(), config)
    trainable, total = trainable_share(peft_model)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    started, losses = time.monotonic(), []
    peft_model.train()
    for step in range(steps):
        order = torch.randperm(len(pairs))[:batch_size].tolist()
        ids, mask, labels = caption_batch(captioner.processor, [pairs[i].caption for i in order], bos, captioner.device)
        loss = caption_loss(model, embeds[order].clone(), ids, mask, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if progress:
            progress(step + 1, losses[-1])
    peft_model.eval()
    with atomic_path(Path(out), directory=True) as tmp:
        peft_model.save_pretrained(tmp)
        info = {"lang": lang, "base_model": captioner.source.name if captioner.source else None, "steps": steps,
                "lr": lr, "rank": rank, "pairs": len(pairs), "first_loss": losses[0], "last_loss": losses[-1],
                "trainable_parameters": trainable, "total_parameters": total}
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    peft_model.unload()  # give the caller its plain model back
    return TrainResult(Path(out), steps, trainable, total, losses[0], losses[-1], time.monotonic() - started)


def adapter_info(path: Path) -> dict:
    """The fastsd metadata saved beside an adapter ({} for adapters made elsewhere)."""
    info = Path(path) / INFO_FILE
    return json.loads(info.read_text(encoding="utf-8")) if info.is_file() else {}


def merge_adapter(model, path: str | Path):
    """`model` with the LoRA adapter at `path` merged into its text decoder."""
    from peft import PeftModel

    folder = Path(path).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise bad_input(f"--adapter {folder}: not a LoRA adapter folder (no adapter_config.json)",
                        "train one: fastsd caption-adapter train --pairs pairs.jsonl --lang de --out PATH")
    dtype = next(model.parameters()).dtype
    try:
        merged = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except (RuntimeError, ValueError, KeyError) as exc:
        raise FastsdError(f"adapter {folder} does not fit this captioning model: {str(exc).splitlines()[0]}",
                          "use the base model the adapter was trained on") from None
    return merged.to(dtype).eval()
