"""Command line: ``python -m unit_nodes train | translate | demo | eval | bench``.

Exit codes: 0 success, 2 bad input (unknown file, invalid option, corrupt weights),
1 training diverged (the last good checkpoint is kept) or an unexpected failure,
130 interrupted (SIGINT or SIGTERM; the message says which checkpoint step is on disk).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
from pathlib import Path

EXIT_DIVERGED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
DEFAULT_PRESET = "emoji64"


class UserError(Exception):
    """An error caused by the user's input; printed without a traceback."""


# --- train ------------------------------------------------------------------------
def add_train(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a UNIT model on two unpaired image folders (or built-in data sets)",
        description="Train UNIT on two unpaired domains. Each domain is an image folder (searched "
        "recursively for png/jpg/jpeg/webp/bmp) or a built-in data set name (mnist, usps, mnistm, "
        "emoji-google, emoji-twitter). Writes OUT/checkpoint.safetensors (resumable), "
        "OUT/model.safetensors + OUT/config.json, OUT/samples/*.png and OUT/losses.jsonl.",
    )
    p.add_argument("--domain-a", required=True, help="image folder or data set name for domain A")
    p.add_argument("--domain-b", required=True, help="image folder or data set name for domain B")
    p.add_argument("--out", required=True, help="output folder (created; an existing run there needs --resume)")
    p.add_argument("--preset", default=None,
                   help="recipe preset: emoji64 (default: the fast 64 px RGB recipe, 22.9 min measured on a free 2-core AVX2 CPU, 5.9 on an AVX-512 one with BF16, 6.8 on one with AMX), "
                        "digits32 (32 px digits) or image256 (the paper's 256 px photo model: a GPU recipe); "
                        "with --resume, only the run's own preset is accepted")
    p.add_argument("--size", type=int, default=None, help="training image size in px (default: the preset's)")
    p.add_argument("--channels-a", type=int, choices=(1, 3), default=None, help="channels of domain A (default: preset/data set)")
    p.add_argument("--channels-b", type=int, choices=(1, 3), default=None, help="channels of domain B (default: preset/data set)")
    p.add_argument("--steps", type=int, default=None,
                   help="total training iterations (default: the preset's: emoji64 2950, digits32 3000, image256 100000; "
                        "with --resume: the run's own)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per domain per iteration (default: the preset's: emoji64 2, digits32 16, image256 1)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the preset's; the paper's is 1e-4)")
    p.add_argument("--paper", action="store_true",
                   help="train exactly as the paper: no moving average, no augmentation, lr 1e-4 (on top of the preset's "
                        "architecture; --set and --lr still apply after it)")
    p.add_argument("--seed", type=int, default=0, help="seed for initialisation, data order and noise (default 0)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto (default): bf16 autocast where it pays (CUDA GPUs with bf16; CPUs with AMX, about 1.5x faster "
                        "on emoji64, or AVX512-BF16, 1.28x: FID within noise of fp32) and fp32 elsewhere; bf16 forces it (not measured on CPUs without bf16 arithmetic, where auto keeps fp32); "
                        "fp16 is for CUDA only; fp32 is exact and reproduces across machines")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.safetensors; --lr or --set lr_policy=... (the learning-rate fields only) change the schedule from the resumed step on")
    p.add_argument("--init", default=None,
                   help="fine-tune from this model (folder, file, bundled pair or Hub repo): its architecture is kept, "
                        "--set, --size, --lr and --paper apply on top (a --set that would change the architecture is "
                        "refused); --preset then only picks the default batch size and steps")
    p.add_argument("--sample-every", type=int, default=500, help="write a sample grid every N steps (0: never)")
    p.add_argument("--checkpoint-every", type=int, default=1000, help="save a checkpoint every N steps (default 1000)")
    p.add_argument("--log-every", type=int, default=50, help="append losses to OUT/losses.jsonl every N steps")
    p.add_argument("--export-every", type=int, default=0,
                   help="also export the model every N steps to OUT/snapshots/step_NNNNNNN/ (inference weights + config, "
                        "ready for eval or upload; 0: never)")
    p.add_argument("--data-root", default=None, help="root of the built-in data sets (default: $UNIT_DATA_ROOT or ../shared/data)")
    p.add_argument("--frame-scale", default=None, metavar="auto|X",
                   help="how much larger objects are drawn in domain B than in A; every translation is resized by it "
                        "(config field frame_scale; default 1, the paper). 'auto' measures it from the two training sets "
                        "(objects on a plain background: emoji, icons, digits; refused for photos): USPS digits 1.35x "
                        "MNIST's, Twitter emoji 1.059x Google's; 'auto' also sets each domain's background colour "
                        "as the fill of the border a shrunk translation uncovers (frame_fill_a/b, unless --set gives them)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any UNITConfig field, e.g. --set lambda_gan=1 --set n_shared=0 (repeatable)")
    p.set_defaults(func=run_train)


def _parse_overrides(items: list[str]) -> dict:
    from .core.config import UNITConfig

    types = {f.name: f.type for f in UNITConfig.__dataclass_fields__.values()}
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set expects FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        if key not in types:
            raise UserError(f"--set: unknown config field {key!r}; known: {sorted(types)}")
        kind = str(types[key])
        try:
            if kind == "bool":
                if value.lower() not in BOOL_WORDS:
                    raise ValueError(value)
                out[key] = BOOL_WORDS[value.lower()]
            else:
                out[key] = int(value) if kind == "int" else float(value) if kind == "float" else value
        except ValueError:
            raise UserError(f"--set {key}: {value!r} is not a valid {kind}") from None
    return out


BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _natural_channels(spec: str) -> int | None:
    """Channels a built-in data set comes in; None for folders (the preset decides)."""
    if spec in ("mnist", "usps"):
        return 1
    if spec == "mnistm" or spec.startswith("emoji-"):
        return 3
    return None


SEED_MAX = 2**63 - 1


def _frame_fields(args) -> tuple[float, dict]:
    """--frame-scale: a number (config.frame_scale, no fills), or 'auto': the scale and each domain's
    background colour (frame_fill_a/b, what a shrunk translation uncovers) measured from the two
    training sets (core.framing)."""
    if args.frame_scale != "auto":
        try:
            return float(args.frame_scale), {}
        except ValueError:
            raise UserError(f"--frame-scale must be 'auto' or a number, got {args.frame_scale!r}") from None
    from .core import data
    from .core.framing import FrameScaleError, measure_framing

    # at 64 px whatever the training size: the measure is a ratio of sizes relative to the frame
    sets = [data.load_domain(spec, "train", 64, root=args.data_root) for spec in (args.domain_a, args.domain_b)]
    try:
        scale, fill_a, fill_b = measure_framing(*sets, names=(args.domain_a, args.domain_b))
    except FrameScaleError as exc:
        raise UserError(f"--frame-scale auto: {exc}") from None
    print(f"frame_scale {scale}: objects in {args.domain_b} are drawn {scale}x the size of those in {args.domain_a}; "
          f"backgrounds {fill_a} / {fill_b} (frame_fill_a / frame_fill_b)", file=sys.stderr)
    return scale, dict(frame_fill_a=fill_a, frame_fill_b=fill_b)


def _check_seed(seed: int) -> None:
    if not 0 <= seed <= SEED_MAX:
        raise UserError(f"--seed must be an integer from 0 to {SEED_MAX} (2**63 - 1), got {seed}")


def _prepare_out_folder(out: Path) -> bool:
    """Create ``out`` (if needed); a clear error when it is a file or cannot be written.
    Returns whether it was created here."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is an existing file, not a folder; choose a folder path")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    return created


class StopRequest:
    """SIGINT (Ctrl-C) and SIGTERM (docker stop, schedulers) while training: the first asks the
    loop to stop at the next step boundary and save a checkpoint there, so that a resumed run
    is bit-identical to an uninterrupted one; a second one stops at once, without saving."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self):
        self.received: list[str] = []
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return bool(self.received)

    def _handle(self, signum, frame) -> None:
        import signal

        self.received.append(signal.Signals(signum).name)
        if len(self.received) == 1:
            print(f"\n{self.received[0]}: stopping after this step and saving a checkpoint "
                  f"(send it again to stop at once, without saving)", file=sys.stderr)
            return
        raise KeyboardInterrupt

    def __enter__(self) -> "StopRequest":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def run_train(args) -> int:
    from .core.files import RunLock, RunFolderBusy

    _check_seed(args.seed)
    from .core.device import resolve_device

    resolve_device(args.device)  # a bogus or unavailable device fails here, before anything is written

    out = Path(args.out)
    created = _prepare_out_folder(out)
    # Under torchrun every rank runs this; the run is one, so rank 0 alone holds its lock.
    lock = RunLock(out, command=" ".join(sys.argv))
    try:
        if int(os.environ.get("RANK", "0")) == 0:
            lock.acquire()
    except RunFolderBusy as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"--out {out} is not writable ({exc.strerror or exc})") from None
    ok = False
    try:
        code = _train_locked(args, out)
        ok = True
        return code
    finally:
        lock.release()
        if created and not ok:
            try:
                out.rmdir()  # only if nothing was written into it
            except OSError:
                pass


def _train_locked(args, out: Path) -> int:
    import torch

    from .core import data, run
    from .core.config import PAPER_TRAINING, PRESET_TRAINING, preset_training
    from .core.device import resolve_device
    from .core.files import remove_stale_temp_files
    from .core.images import save_pil
    from .core.checkpoint import CHECKPOINT_FILE, checkpoint_batch_size, checkpoint_step
    from .core.progress import BreakdownWatch, CollapseWatch
    from .core.trainer import TrainingDiverged, check_training_fits
    from .core.sources import resolve
    from .core.weights import CONFIG_FILE, MODEL_FILE, load_model, read_config, save_model

    ckpt = out / CHECKPOINT_FILE
    if ckpt.exists() and not args.resume:
        raise UserError(f"{out} already holds a training run ({ckpt.name}); pass --resume to continue it or choose another --out")
    if args.resume and not ckpt.exists():
        raise UserError(f"--resume: no checkpoint at {ckpt}")
    if int(os.environ.get("RANK", "0")) == 0:  # the lock holder: no other process writes here
        for name in (CHECKPOINT_FILE, MODEL_FILE, CONFIG_FILE):  # left by a save that was killed
            remove_stale_temp_files(out / name)

    saved = read_config(ckpt) if args.resume else None
    # a resumed run keeps its own batch size (recorded in the checkpoint) and its own horizon unless told otherwise
    recommended = preset_training(saved.preset if saved and saved.preset in PRESET_TRAINING
                                  else args.preset or DEFAULT_PRESET)
    if args.steps is None:
        args.steps = saved.total_steps if saved else recommended["steps"]
    if args.batch_size is None:
        own = checkpoint_batch_size(ckpt) if saved else None
        args.batch_size = own or recommended["batch_size"]
        if saved and own is None:
            print(f"note: {ckpt.name} does not record its batch size (written before 2026-12-04); continuing at "
                  f"batch {args.batch_size}, the preset's default now (emoji64's was 4 until then): pass "
                  f"--batch-size to match the run", file=sys.stderr)
    if args.steps < 1 or args.batch_size < 1:
        raise UserError("--steps and --batch-size must be >= 1")
    if args.export_every < 0:
        raise UserError("--export-every must be >= 0")

    # What the user asked for (run.py decides what the run is trained with)
    requested = {**(PAPER_TRAINING if args.paper else {}), **_parse_overrides(args.set)}
    if args.size is not None:
        requested["image_size"] = args.size
    if args.lr is not None:
        requested["lr"] = args.lr
    if args.channels_a is not None:
        requested["channels_a"] = args.channels_a
    if args.channels_b is not None:
        requested["channels_b"] = args.channels_b

    if args.frame_scale is not None:
        requested["frame_scale"], fills = _frame_fields(args)
        for name, value in fills.items():  # a fill given by --set stands; a resumed run keeps its own
            if not args.resume:
                requested.setdefault(name, value)

    device = resolve_device(args.device)
    rank = 0
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun: one process per GPU
        import torch.distributed as dist

        use_cuda = torch.cuda.is_available() and args.device != "cpu"
        if not dist.is_initialized():
            dist.init_process_group("nccl" if use_cuda else "gloo")
        rank = dist.get_rank()
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)
    if args.resume:
        if args.preset is not None and args.preset != saved.preset:
            raise UserError(f"--resume: the run in {out} was trained with preset {saved.preset!r}, not "
                            f"{args.preset!r}; drop --preset to resume it, or start a new --out")
        # Re-running the run's own command with --resume repeats its --set values: only real changes count.
        try:
            trainer, changes = run.resume_trainer(ckpt, requested, seed=args.seed, device=device,
                                                  precision=args.precision)
        except run.RunSettingsError as exc:
            raise UserError(f"--resume: {exc}. Start a new --out (or use --init to start from its weights)") from None
        print(f"resuming {ckpt} at step {trainer.step}", file=sys.stderr)
        for key, (old, new) in changes.items():
            print(f"  {key}: {old} -> {new} from step {trainer.step}", file=sys.stderr)
        cfg = trainer.config
    else:
        requested.setdefault("total_steps", args.steps)
        for d, spec in (("a", args.domain_a), ("b", args.domain_b)):  # a built-in set asks for its own channels
            natural = _natural_channels(spec)
            if natural is not None:
                requested.setdefault(f"channels_{d}", natural)
        init = load_model(resolve(args.init), device="cpu") if args.init else None
        if init is not None:
            cfg = run.init_config(init.config, requested, source=f"--init {args.init}")
        else:
            cfg = run.new_run_config(args.preset or DEFAULT_PRESET, requested)
        check_training_fits(cfg, args.batch_size, device)
        trainer = run.start_trainer(cfg, args.seed, init, device=device, precision=args.precision)
    if cfg.lr_policy == "linear" and args.steps > cfg.total_steps:
        # a resume's --steps says how far to train, total_steps where the schedule ends: past it the rate is 0
        raise UserError(f"--steps {args.steps} goes past the run's total_steps ({cfg.total_steps}), where its 'linear' "
                        f"learning-rate schedule reaches 0, so the steps after it would not train; add "
                        f"--set total_steps={args.steps} to stretch the schedule (on a resume, from the current step on)")

    ds_a = data.load_domain(args.domain_a, "train", cfg.image_size, root=args.data_root, channels=cfg.channels_a)
    ds_b = data.load_domain(args.domain_b, "train", cfg.image_size, root=args.data_root, channels=cfg.channels_b)
    print(f"domain A: {args.domain_a} ({len(ds_a)} images), domain B: {args.domain_b} ({len(ds_b)} images), "
          f"{cfg.image_size} px, device {trainer.device}, {trainer.precision}", file=sys.stderr)

    from tqdm import tqdm

    bar = tqdm(total=args.steps, initial=trainer.step, unit="it", dynamic_ncols=True, file=sys.stderr, disable=rank != 0)
    log_path = out / "losses.jsonl"
    stop = StopRequest()
    breakdown, collapse = BreakdownWatch(), CollapseWatch.for_config(trainer.config, start_step=trainer.step)

    def export_metadata() -> dict:
        return run.export_metadata(trainer, args.domain_a, args.domain_b)

    def on_step(report) -> None:
        bar.update(1)
        if rank == 0:  # under torchrun only rank 0 writes logs and samples
            write_step_outputs(report)
        if stop_now(report):  # stop at this step's boundary (fit saves)
            raise KeyboardInterrupt

    def stop_now(report) -> bool:
        requested = stop.requested
        if trainer.distributed:  # every rank must stop after the same step, or the others wait forever
            import torch.distributed as dist

            flag = torch.tensor([float(requested)], device=trainer.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            requested = bool(flag.item())
        return requested and report.step < report.total_steps

    def write_step_outputs(report) -> None:
        phase_start = trainer.config.phase(report.step - 1)[0]  # of the step just taken
        for alarm in (breakdown.update(report.step, report.losses),
                      collapse.update(report.step, report.losses, phase_start=phase_start)):
            if alarm:
                bar.write(f"warning: {alarm}", file=sys.stderr)
        note = trainer.spike_guard and trainer.spike_guard.note_for(report.step)
        if note:
            bar.write(f"note: {note}", file=sys.stderr)
        if report.step % max(1, args.log_every) == 0 or report.step == report.total_steps:
            bar.set_postfix(recon=f"{report.losses['recon_a']:.3f}/{report.losses['recon_b']:.3f}",
                            cycle=f"{report.losses['cycle_a']:.3f}/{report.losses['cycle_b']:.3f}")
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": report.step, "time_s": round(trainer.clock.elapsed()[0], 2), **report.losses}) + "\n")
        if args.export_every and report.step % args.export_every == 0:
            # Snapshots carry the run's training time (wall and CPU, summed over resumes) so
            # quality can be plotted against it.
            seconds, cpu_seconds = trainer.clock.elapsed()
            save_model(trainer.export_model(), out / "snapshots" / f"step_{report.step:07d}", include_discriminators=False,
                       metadata={**export_metadata(), "run_seconds": f"{seconds:.1f}",
                                 "run_cpu_seconds": f"{cpu_seconds:.1f}"})
        if args.sample_every and (report.step % args.sample_every == 0 or report.step == report.total_steps):
            x_a, x_b = report.batch
            grid = trainer.preview(x_a, x_b)
            from torchvision.utils import make_grid
            from PIL import Image

            arr = (make_grid(grid, nrow=1, padding=2).permute(1, 2, 0).numpy() * 255).round().astype("uint8")
            save_pil(Image.fromarray(arr), out / "samples" / f"step_{report.step:07d}.png")

    try:
        with stop:
            trainer.fit(ds_a, ds_b, args.steps, args.batch_size, callback=on_step,
                        checkpoint_path=ckpt, checkpoint_every=args.checkpoint_every)
    except KeyboardInterrupt:
        bar.close()
        how = f" ({' then '.join(stop.received)})" if stop.received else ""
        saved = checkpoint_step(ckpt)  # what is on disk, whatever the interrupts cut short
        if saved == trainer.step:
            print(f"\ninterrupted{how} at step {trainer.step}; checkpoint saved to {ckpt} (continue with --resume)",
                  file=sys.stderr)
        elif saved is None:
            print(f"\ninterrupted{how} before any checkpoint was written: {out} holds no resumable run", file=sys.stderr)
        else:
            print(f"\ninterrupted{how} before the checkpoint of step {trainer.step} was written; {ckpt} holds "
                  f"step {saved} (continue from there with --resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TrainingDiverged as exc:
        bar.close()
        print(f"\nerror: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    bar.close()
    if rank != 0:
        return 0
    path = save_model(trainer.export_model(), out, include_discriminators=False, metadata=export_metadata())
    print(f"saved {path} after {trainer.step} steps", file=sys.stderr)
    return 0


# --- translate --------------------------------------------------------------------
def add_translate(sub) -> None:
    p = sub.add_parser(
        "translate",
        help="translate images with a trained model",
        description="Translate image files (or all images in folders) from one domain to the other. "
        "Outputs are PNGs named <input stem>_<direction>.png in --out (in the input's subfolder for inputs "
        "found in folders; inputs whose names would collide keep their extension: x_jpg_a2b.png); inputs are "
        "never overwritten.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders")
    p.add_argument("--model", required=True, help="model folder, .safetensors file, bundled pair name or Hub repo id")
    p.add_argument("--revision", default=None, help="Hub revision (commit SHA, tag or branch) when --model is a repo id")
    p.add_argument("--direction", required=True, choices=("a2b", "b2a"), help="translation direction")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--sample", action="store_true", help="decode a sampled code (mean + N(0, I) noise) instead of the mean")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled code (with --sample)")
    p.add_argument("--cycle", action="store_true", help="also write the cycle reconstruction (<stem>_<direction>_cycle.png)")
    p.add_argument("--tile", type=int, default=0, help="translate in overlapping tiles of N px (0: automatic, only "
                                                       "when an image is too large for memory)")
    p.add_argument("--resize", default="none", choices=("none", "training"),
                   help="'training': translate at the model's training scale (shorter side resized to its image_size) "
                        "and resize the result back; 'none' (default) translates at the input's own size and warns "
                        "when that is 2x or more away from the training scale")
    p.set_defaults(func=run_translate)


def run_translate(args) -> int:
    import tempfile

    from tqdm import tqdm

    from .core.device import resolve_device
    from .core.images import image_inputs, load_image, output_names, save_image
    from .core.inference import scale_warning, translate
    from .core.sources import resolve
    from .core.weights import load_model

    _check_seed(args.seed)
    if args.tile < 0:
        raise UserError(f"--tile must be >= 0 (0: automatic), got {args.tile}")
    device = resolve_device(args.device)
    model = load_model(resolve(args.model, revision=args.revision), device=device, discriminators=False)
    source, target = ("a", "b") if args.direction == "a2b" else ("b", "a")
    inputs = image_inputs(args.inputs)
    if not inputs:
        raise UserError(f"no images found in {args.inputs}")
    out = Path(args.out)
    _prepare_out_folder(out)
    try:
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UserError(f"--out {out} is not writable ({exc.strerror or exc})") from None
    names = output_names([rel for _, rel in inputs], f"_{args.direction}")
    resolved_inputs = {f.resolve() for f, _ in inputs}
    for name in names:
        if (out / name).resolve() in resolved_inputs:
            raise UserError(f"refusing to overwrite input {out / name}")
    tile = args.tile or "auto"
    show = sys.stderr.isatty() or len(inputs) > 1
    images_bar = tqdm(total=len(inputs), unit="img", file=sys.stderr, dynamic_ncols=True, disable=not show)
    tiles_bar = None

    def tile_progress(done: int, total: int) -> None:
        nonlocal tiles_bar
        if tiles_bar is None or tiles_bar.total != total or done == 1:
            if tiles_bar is not None:
                tiles_bar.close()
            tiles_bar = tqdm(total=total, unit="tile", file=sys.stderr, dynamic_ncols=True, leave=False)
        tiles_bar.update(done - tiles_bar.n)

    try:
        for (f, _), name in zip(inputs, names):
            dest = out / name
            x = load_image(f, model.config.channels(source)).unsqueeze(0)
            warning = scale_warning(model, *x.shape[-2:]) if args.resize == "none" else None
            if warning:
                images_bar.write(f"warning: {f}: {warning}", file=sys.stderr)
            y = translate(model, x, source, target, sample=args.sample, seed=args.seed, tile=tile,
                          progress=tile_progress, resize=args.resize)
            save_image(y[0], dest)
            if args.cycle:
                back = translate(model, y, target, source, tile=tile, progress=tile_progress, resize=args.resize)
                save_image(back[0], dest.with_name(f"{dest.stem}_cycle.png"))
            images_bar.write(str(dest), file=sys.stdout)
            images_bar.update(1)
    finally:
        if tiles_bar is not None:
            tiles_bar.close()
        images_bar.close()
    return 0


# --- entry point ------------------------------------------------------------------
def _optional(module: str, attr: str):
    import importlib

    try:
        mod = importlib.import_module(module, __package__)
    except ModuleNotFoundError as exc:  # only the module itself may be absent, not its imports
        if exc.name and exc.name.endswith(module.lstrip(".")):
            return None
        raise
    return getattr(mod, attr, None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m unit_nodes",
        description="UNIT unsupervised image-to-image translation (Liu, Breuel & Kautz, NIPS 2017).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train(sub)
    add_translate(sub)
    # demo / eval / bench live beside their code; each module adds its own sub-command
    for module in (".demo", ".tools.evaluate", ".tools.bench"):
        add = _optional(module, "add_cli")
        if add is not None:
            add(sub)
    return parser


# Errors of the file system the user can fix (permissions, read-only or full disk, a file
# where a folder should be): one line, not a traceback.
_USER_FIXABLE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EEXIST, errno.ENOTDIR,
                        errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EDQUOT}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .core.config import ConfigError
    from .core.weights import UNITWeightsError

    try:
        return int(args.func(args) or 0)
    except (UserError, ConfigError, UNITWeightsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        if exc.errno not in _USER_FIXABLE_ERRNOS:
            raise
        print(f"error: {exc.strerror}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
