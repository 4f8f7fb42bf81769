"""Training data: images as tensors, a deterministic data order, latent and text caches."""

from __future__ import annotations

from fastsd.workloads.train.components import encode_caption, encode_images, scale_latents, tokenize
from fastsd.workloads.train.losses import to_device

ORDER_STREAM = 0xFFFF  # the generator stream of data orders, apart from every process rank


def load_pixels(path, resolution):
    """An image as a (3, h, w) tensor in [-1, 1] (centre-cropped and resized when needed).

    `resolution` is the square's side, or a bucket's (width, height)."""
    import numpy as np
    import torch
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        size = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
        image = ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def step_generator(seed: int, step: int, rank: int = 0):
    """A CPU generator whose stream depends only on (seed, step, rank): resumable at any step."""
    import numpy as np
    import torch

    state = np.random.SeedSequence([seed, step, rank]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def epoch_order(seed: int, epoch: int, count: int) -> list[int]:
    """The shuffled order of the `count` examples in `epoch`."""
    import torch

    return torch.randperm(count, generator=step_generator(seed, epoch, rank=ORDER_STREAM)).tolist()


def batch_indices(seed: int, step: int, batch: int, rank: int, world: int, count: int) -> list[int]:
    """The example indices that process `rank` trains on at global `step`."""
    out = []
    for k in range(batch):
        position = (step * world + rank) * batch + k
        epoch, i = divmod(position, count)
        out.append(epoch_order(seed, epoch, count)[i])
    return out


class LatentCache:
    """VAE posteriors of every image, encoded once per flip (per bucket size); sampled fresh at each step."""

    def __init__(self, comps, examples, resolution: int, flips: bool, batch: int = 8, sizes=None):
        import torch

        self.comps, self.entries = comps, {}
        variants = (False, True) if flips else (False,)
        sizes = sizes or [resolution] * len(examples)
        pixels = [load_pixels(e.image, size) for e, size in zip(examples, sizes, strict=True)]
        keys = [(i, f) for f in variants for i in range(len(pixels))]
        chunks = []
        for size in dict.fromkeys(map(str, sizes)):  # images of one size are encoded together
            same = [key for key in keys if str(sizes[key[0]]) == size]
            chunks += [same[start : start + batch] for start in range(0, len(same), batch)]
        with torch.no_grad():
            for chunk in chunks:
                stack = torch.stack([pixels[i].flip(-1) if f else pixels[i] for i, f in chunk])
                mean, std = encode_images(comps, stack)
                for n, key in enumerate(chunk):
                    self.entries[key] = (mean[n : n + 1].cpu(), std[n : n + 1].cpu())

    def sample(self, indices, flips, generator, device, dtype):
        """Scaled latents for a batch, drawn from each image's posterior with `generator`."""
        import torch

        means = torch.cat([self.entries[(i, bool(f))][0] for i, f in zip(indices, flips, strict=True)])
        stds = torch.cat([self.entries[(i, bool(f))][1] for i, f in zip(indices, flips, strict=True)])
        latents = means + stds * torch.randn(means.shape, generator=generator)
        return to_device(scale_latents(self.comps, latents), device, dtype)


class TextCache:
    """Text conditioning per caption, computed once while the text encoders are frozen."""

    def __init__(self, comps, captions):
        self.entries = {}
        self.add(comps, captions)

    def add(self, comps, captions) -> None:
        """Encode the captions not cached yet."""
        import torch

        with torch.no_grad():
            for caption in dict.fromkeys(captions):
                if caption not in self.entries:
                    cond = encode_caption(comps, caption)
                    self.entries[caption] = {k: _detached(v) for k, v in cond.items()}

    def to(self, device) -> None:
        """Move every cached tensor to `device`."""
        for entry in self.entries.values():
            for key, value in entry.items():
                entry[key] = [v.to(device) for v in value] if isinstance(value, list) else value.to(device)

    def batch(self, captions) -> dict:
        """The conditioning of `captions`, stacked as a batch (lists, of unequal lengths, joined)."""
        import torch

        keys = self.entries[captions[0]].keys()
        return {k: (sum((self.entries[c][k] for c in captions), []) if isinstance(self.entries[captions[0]][k], list)
                    else torch.cat([self.entries[c][k] for c in captions])) for k in keys}


def _detached(value):
    return [v.detach() for v in value] if isinstance(value, list) else value.detach()


class TokenCache:
    """Token ids per caption, for stages that run the text encoder."""

    def __init__(self, comps, captions):
        self.comps = comps
        self.entries = {c: tokenize(comps, [c]) for c in dict.fromkeys(captions)}

    def batch(self, captions) -> list:
        import torch

        return [torch.cat([self.entries[c][n] for c in captions]) for n in range(len(self.comps.tokenizers))]
