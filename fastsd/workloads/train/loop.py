"""The training loop: stages in order, each with its optimizer, caches, checkpoints and samples."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fastsd.errors import FastsdError
from fastsd.fsutil import atomic_write_json
from fastsd.workloads.train.checkpoint import (
    TrainState,
    kill_point,
    load_state,
    prune_checkpoints,
    write_trained_folder,
)
from fastsd.workloads.train.compiled import compile_blocks
from fastsd.workloads.train.components import (
    encode_text,
    load_components,
    predict,
    sample_pipeline,
    vae_scale_factor,
)
from fastsd.workloads.train.data import (
    LatentCache,
    TextCache,
    TokenCache,
    epoch_order,
    step_generator,
)
from fastsd.workloads.train.ema import make_ema
from fastsd.workloads.train.families import is_llm_family, lora_targets
from fastsd.workloads.train.families.common import cache_then_free
from fastsd.workloads.train.families.quantize import is_quantized, quantize_frozen
from fastsd.workloads.train.lora import (
    DENOISER_TARGETS,
    TEXT_LORA_FOLDERS,
    TEXT_TARGETS,
    add_lora,
    load_adapter,
    load_text_adapter,
)
from fastsd.workloads.train.losses import make_noise, noisy_input
from fastsd.workloads.train.memory import (
    OFFLOAD_DEVICE,
    attention_kernel,
    frozen_text_encoders,
    move,
)
from fastsd.workloads.train.optim import ClippedStep, linear_schedule, make_optimizer
from fastsd.workloads.train.prior import PriorTerm
from fastsd.workloads.train.progress import Progress, trim_metrics
from fastsd.workloads.train.record import data_record
from fastsd.workloads.train.samples import render_images, save_grid
from fastsd.workloads.train.sampling import BatchSampler, image_bucket
from fastsd.workloads.train.snr import training_loss
from fastsd.workloads.train.tensorboard import TrainBoard


@dataclass
class Trainables:
    """The modules whose weights a trained-weights folder holds."""

    denoiser: object
    text_encoder: object
    text_encoder_2: object = None  # SDXL's OpenCLIP-G, when its LoRA trains too (lora_te2_)


def make_accelerator(settings):
    """An Accelerator for the run's device, precision and process group."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    return Accelerator(cpu=settings.cpu, mixed_precision=settings.mixed_precision,
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


class Trainer:
    """Runs every stage of one training run, on this process's share of the data."""

    def __init__(self, settings, paths, base_folder: Path, examples, accelerator, on_progress=None,
                 class_examples=(), class_info=None):
        self.s, self.paths, self.base, self.examples, self.acc = settings, paths, base_folder, examples, accelerator
        self.class_examples, self.class_info = list(class_examples), class_info  # prior preservation (prior.py)
        self.on_progress = on_progress or (lambda step, checkpoint: None)
        self.main = accelerator.is_main_process
        self.data = data_record(examples) if self.main else None  # recorded with the weights

    def run(self, resume_path: Path | None) -> Path:
        """Train from scratch or from `resume_path`; returns the final weights folder."""
        s = self.s
        state, tensors = load_state(resume_path) if resume_path else (TrainState(), None)
        self._setup(resume_path)
        if self.main:
            atomic_write_json(self.paths.train_data, {**self.data_summary, "prior_preservation": self.class_info})
            trim_metrics(self.paths.metrics, state.step)
        self.progress = Progress(self.paths.metrics, s.total_steps, state.step, state.elapsed_s, self.main)
        self.board = TrainBoard(self.paths.tensorboard, state.step, self.main)
        try:
            start = 0
            for name, steps in s.stages:
                if state.step < start + steps:
                    resumed = tensors if (tensors and state.stage == name) else None
                    self._stage(name, start, start + steps, state, resumed)
                start += steps
        finally:
            self.progress.close()
            self.board.close()
        state.elapsed_s = self.progress.elapsed_s
        if self.main:
            write_trained_folder(self.paths.final, s, state, self.trainables, data=self.data)
        self.acc.wait_for_everyone()
        return self.paths.final

    def _setup(self, resume_path: Path | None) -> None:
        import torch

        s, acc = self.s, self.acc
        trained = resume_path if (resume_path and s.mode == "full") else None
        c = self.comps = load_components(self.base, s.family, s.prediction, trained=trained)
        self.weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(s.mixed_precision, torch.float32)
        c.vae.to(acc.device, torch.float32)  # a base stored in fp16 still caches fp32 latents
        sizes = [image_bucket(e.image, s.resolution, s.buckets) for e in self.examples]
        self.sampler = BatchSampler(s.seed, s.batch_size, acc.num_processes, sizes, [e.repeats for e in self.examples])
        self.latents = LatentCache(c, self.examples, s.resolution, s.flip, sizes=sizes)
        self.prior = PriorTerm(c, self.class_examples, s) if self.class_examples else None
        self.text_cache = None
        if is_llm_family(s.family):  # the LLM encodes every prompt, then leaves before the transformer arrives
            prompts = [e.caption for e in self.examples] + ([self.prior.prompt] if self.prior else [])
            encoder_device = OFFLOAD_DEVICE if s.offload_frozen else acc.device  # 8gb: the LLM runs on the CPU
            self.text_cache = cache_then_free(c, prompts, s.sample_prompt, encoder_device, self.weight_dtype,
                                              acc.device)
        self.data_summary = self.sampler.summary(self.examples, sizes)
        if s.offload_frozen:
            c.vae.to("cpu")
        self.lora_params = []
        frozen_dtype = self.weight_dtype if s.mode == "lora" else torch.float32
        quantize_frozen(c, s.quantize, acc.device, self.weight_dtype)  # before the LoRA wraps its layers
        if s.mode == "lora":
            torch.manual_seed(s.seed)
            targets = lora_targets(s.family, c.denoiser, DENOISER_TARGETS)
            self.lora_params = add_lora(c.denoiser, s.lora_rank, targets, s.lora_type)
            # CLIP-L; on SDXL also OpenCLIP-G, as kohya does (Flux's T5 stays frozen)
            text_loras = c.text_encoders[: 2 if s.family == "sdxl" else 1] if s.lora_text_encoder else []
            for encoder in text_loras:
                self.lora_params += add_lora(encoder, s.lora_rank, TEXT_TARGETS, s.lora_type)
            if resume_path:
                load_adapter(c.denoiser, resume_path / "lora" / "unet")
                for encoder, folder in zip(text_loras, TEXT_LORA_FOLDERS, strict=False):
                    load_text_adapter(encoder, resume_path / "lora" / folder)
        for module in (c.denoiser, *c.text_encoders):  # the dtype always: a base may be stored in fp16
            if module is c.denoiser and is_quantized(s):
                module.to(acc.device)  # quantized weights keep their own dtype
            else:
                module.to(acc.device, frozen_dtype)
        for p in self.lora_params:
            p.data = p.data.float()
        self.attention = attention_kernel(s.attention)
        if self.attention == "xformers":
            try:
                c.denoiser.enable_xformers_memory_efficient_attention()
            except Exception as exc:  # diffusers raises ModuleNotFoundError/ValueError variants
                raise FastsdError(f"xformers attention is not available here: {exc}",
                                  "use --attention sdpa (the default)") from None
        if s.checkpointing_on():
            c.denoiser.enable_gradient_checkpointing()
            for encoder in c.text_encoders[: 2 if s.lora_text_encoder else 1]:
                (getattr(encoder, "activation_checkpointing_enable", None) or encoder.gradient_checkpointing_enable)()
        if s.compile:
            compile_blocks(c.denoiser)
        second = c.text_encoders[1] if (s.lora_text_encoder and s.family == "sdxl") else None
        self.trainables = Trainables(c.denoiser, c.text_encoders[0] if c.text_encoders else None, second)

    def _stage(self, name: str, start: int, end: int, state: TrainState, resumed: dict | None) -> None:
        import torch

        s, c, acc = self.s, self.comps, self.acc
        train_text = name == "text_encoder" or (name == "lora" and s.lora_text_encoder)
        text_encoder, denoiser = (c.text_encoders[0] if c.text_encoders else None), c.denoiser
        if name == "text_encoder":
            params, lr = list(text_encoder.parameters()), s.text_encoder_lr
        elif name == "unet":
            params, lr = list(denoiser.parameters()), s.unet_lr
        else:
            params, lr = self.lora_params, s.lora_lr
        if text_encoder is not None:  # None: an LLM encoder, freed once its outputs were cached
            text_encoder.requires_grad_(name == "text_encoder")
        denoiser.requires_grad_(name == "unet")
        for p in params:
            p.requires_grad_(True)
        raw_optimizer = make_optimizer(s, params, lr)
        schedule = linear_schedule(raw_optimizer, end - start)
        if resumed:
            raw_optimizer.load_state_dict(resumed["optimizer"])
            schedule.load_state_dict(resumed["lr_scheduler"])
        captions = [e.caption for e in self.examples]
        all_captions = captions + ([self.prior.prompt] if self.prior else [])
        second = self.trainables.text_encoder_2 if name == "lora" else None
        if train_text:
            text_encoder.train()
            text_model = acc.prepare(text_encoder)
            # SDXL's second encoder: prepared too, so several processes average its LoRA's gradients
            text_models = [text_model, *([acc.prepare(second)] if second is not None else c.text_encoders[1:])]
            tokens, text_cache = TokenCache(c, all_captions), None
        else:
            if text_encoder is not None:
                text_encoder.eval()
            text_model, tokens = text_encoder, None
            text_cache = self.text_cache or TextCache(c, all_captions)
        denoise_model = acc.prepare(denoiser) if name in ("unet", "lora") else denoiser
        denoiser.train(name in ("unet", "lora"))
        optimizer = acc.prepare(raw_optimizer)
        self.ema = ema = make_ema(s, params)
        if ema is not None and resumed:
            ema.load_state_dict(resumed["ema"])
        if text_cache is not None and s.offload_frozen and frozen_text_encoders(s, name):
            move(c.text_encoders, OFFLOAD_DEVICE)  # their outputs are cached
        rank, world, count = acc.process_index, acc.num_processes, len(self.examples)
        save_steps = set(s.save_steps())
        scale = vae_scale_factor(c)

        def batch_loss(latents, batch_captions, g):
            noise = make_noise(latents, g, s.offset_noise)
            make_input = c.extra.get("noisy_input") or noisy_input  # the 2026 families shift their timesteps
            noisy, timesteps, target = make_input(s.prediction, c.noise_scheduler, latents, noise, g)
            size = (latents.shape[-2] * scale, latents.shape[-1] * scale)  # (h, w) px: a bucket or the square
            with acc.autocast():
                if text_cache is not None:
                    cond = text_cache.batch(batch_captions)
                else:
                    cond = encode_text(c, tokens.batch(batch_captions), text_models)
                output = predict(c, denoise_model, noisy, timesteps, cond, size)
                return training_loss(s, c.noise_scheduler, output, target, timesteps)

        clipped_step = ClippedStep(optimizer, raw_optimizer, params, acc)
        unread = None  # the last step's loss, read once the next step is queued: no host sync per step
        first, began = state.step, time.monotonic()
        for step in range(state.step, end):
            g = step_generator(s.seed, step, rank)
            indices = self.sampler.indices(step, rank)
            flips = (torch.rand(len(indices), generator=g) < 0.5).tolist() if s.flip else [False] * len(indices)
            latents = self.latents.sample(indices, flips, g, acc.device, torch.float32)
            loss = batch_loss(latents, [captions[i] for i in indices], g)
            if self.prior is not None:
                loss = loss + self.prior.loss(step, rank, world, batch_loss, acc.device)
            acc.backward(loss)
            lr = schedule.get_last_lr()[0]
            clipped_step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update()
            state.step, state.stage = step + 1, name
            self._record(unread)
            unread = (state.step, name, loss.detach(), lr, time.monotonic())
            if s.compile and step == first:  # this run's first step of the stage compiled its graphs
                self.progress.compiled(state.step, unread[-1], unread[-1] - began)
            kill_point("step", state.step)
            checkpoint = None
            if state.step in save_steps:
                self._record(unread)  # a checkpoint's metrics are on disk with it
                unread = None
                state.elapsed_s = self.progress.elapsed_s
                state.data_order = epoch_order(s.seed, (state.step * world * s.batch_size) // count, count)
                if self.main:
                    write_trained_folder(self.paths.checkpoint(state.step), s, state, self.trainables,
                                         raw_optimizer, schedule, data=self.data, ema=ema)
                    prune_checkpoints(self.paths.checkpoints, s.keep)
                acc.wait_for_everyone()
                checkpoint = state.step
            if self.main and s.sample_every and state.step % s.sample_every == 0:
                self.sample(state.step)
            if self.main:
                self.on_progress(state.step, checkpoint)
        self._record(unread)
        if ema is not None:
            ema.copy_to_params()  # the average is the stage's result
        self.ema = None

    def _record(self, unread) -> None:
        """Write a step's loss and learning rate to the metrics and TensorBoard (reads the loss: a sync)."""
        if unread is not None:
            step, stage, loss, lr, at = unread
            value = float(loss.item())
            self.progress.step(step, stage, value, lr, at)
            self.board.step(step, stage, value, lr)

    def sample(self, step: int) -> Path:
        """Render every sample prompt with the current (EMA when on) weights into the grid samples/step-N.png."""
        from contextlib import nullcontext

        c, s = self.comps, self.s
        devices = [m.device for m in (c.vae, *c.text_encoders)]
        move((c.vae, *c.text_encoders), self.acc.device)
        pipeline = sample_pipeline(c, c.denoiser, c.text_encoders)
        pipeline.set_progress_bar_config(disable=True)
        with self.ema.swapped_in() if getattr(self, "ema", None) is not None else nullcontext():
            images = render_images(pipeline, s.sample_prompt, s.sample_seed, s.sample_steps, s.resolution,
                                   self.acc.autocast)
        path = self.paths.sample(step)
        self.board.samples(step, save_grid(images, s.sample_prompt, path))
        for module, device in zip((c.vae, *c.text_encoders), devices, strict=True):
            module.to(device)
        return path
