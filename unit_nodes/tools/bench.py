"""``python -m unit_nodes bench``: speed, memory and roofline ratios of translation and training."""

from __future__ import annotations


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_bytes() -> int:
    kib = _proc_status_kib("VmRSS")
    return 0 if kib is None else kib * 1024


def peak_rss_bytes() -> int:
    """High-water mark of this process's resident memory (Linux /proc; ru_maxrss elsewhere)."""
    kib = _proc_status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    import resource
    import sys

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


def _malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so RSS falls to what is really in use."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs), after
    returning freed heap memory to the OS so that earlier measurements do not mask this one."""
    import gc

    gc.collect()
    _malloc_trim()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


import contextlib
import copy
import datetime
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Callable

import torch

PATHS = ("eager", "tuned", "bf16", "compile")
MATMUL_FLOP_OPS = ("conv", "mm", "matmul", "linear", "bmm", "addmm", "baddbmm")


# --- machine ----------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_roofline(device: torch.device, dtype: torch.dtype = torch.float32, seconds: float = 0.3) -> float:
    """Best GFLOP/s of a large square matmul on ``device``: the machine's compute roofline as
    measured now, with the current thread count (so that ratios hold on a busy machine)."""
    n = _roofline_size(device, dtype)
    if device.type == "cuda" and dtype == torch.float32:
        # fp32 convs may run on TF32 tensor cores (cudnn.allow_tf32, on by default); measure the
        # matmul roofline under the same rule, or fp32 ratios could exceed 1
        with _matmul_tf32(torch.backends.cudnn.allow_tf32):
            return _matmul_gflops(device, dtype, n, seconds)
    return _matmul_gflops(device, dtype, n, seconds)


@contextlib.contextmanager
def _matmul_tf32(enabled: bool):
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old


_ROOFLINE_OPERANDS: dict = {}
_ROOFLINE_SIZES: dict = {}


def _roofline_size(device: torch.device, dtype: torch.dtype) -> int:
    """The roofline matmul's side: 2048 on a CPU (8192 on a GPU), unless one call of a smaller
    size already takes 0.1 s. Why: where the dtype has no native kernels (bf16 on a CPU with AVX2
    only: 1.2 GFLOP/s, ~14 s per 2048^2 call) the roofline, sampled between every timed call, would
    dominate the run. Chosen once per device and dtype, so every sample of a run uses the same size.
    The probe's operands are not kept (unlike the roofline's own)."""
    key = (str(device), dtype)
    if key not in _ROOFLINE_SIZES:
        top = 2048 if device.type == "cpu" else 8192
        n = 256 if device.type == "cpu" else top
        while n < top:
            a, c = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
            if _best_matmul_seconds(a, a, c, device, 0.0) >= 0.1:
                break
            n *= 2
        _ROOFLINE_SIZES[key] = n
    return _ROOFLINE_SIZES[key]


def _matmul_gflops(device: torch.device, dtype: torch.dtype, n: int, seconds: float) -> float:
    # operands are allocated once and kept, so roofline samples taken between timed calls do
    # not show up in the peak memory of the measurement around them
    key = (str(device), dtype, n)
    if key not in _ROOFLINE_OPERANDS:
        _ROOFLINE_OPERANDS[key] = tuple(torch.randn(n, n, device=device, dtype=dtype) for _ in range(3))
    a, b, c = _ROOFLINE_OPERANDS[key]
    return 2 * n**3 / _best_matmul_seconds(a, b, c, device, seconds) / 1e9


def _best_matmul_seconds(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, device: torch.device,
                         seconds: float) -> float:
    """Fastest of the ``c = a @ b`` calls timed over ``seconds`` (at least one), after one warm-up."""
    torch.matmul(a, b, out=c)
    _sync(device)
    best, spent = float("inf"), 0.0
    while spent < seconds or best == float("inf"):
        t = time.perf_counter()
        torch.matmul(a, b, out=c)
        _sync(device)
        dt = time.perf_counter() - t
        best, spent = min(best, dt), spent + dt
    return best


def count_flops(fn: Callable[[], object]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def time_calls(fn: Callable[[], object], device: torch.device, iters: int, warmup: int = 1,
               between: Callable[[], float] | None = None) -> tuple[list[float], list[float]]:
    """Seconds of each of ``iters`` timed calls of ``fn`` after ``warmup``, and the values of
    ``between()`` sampled before the first call and after every call (a roofline sample)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times, samples = [], [between()] if between else []
    for _ in range(max(1, iters)):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
        if between:
            samples.append(between())
    return times, samples


def roofline_figures(flops: int | None, times: list[float], roofs: list[float]) -> dict:
    """Median time and, per timed call, achieved GFLOP/s over the mean of the roofline samples
    taken just before and just after that call; the median of those ratios is the figure
    (a busy machine slows both the call and its neighbouring samples)."""
    sec = statistics.median(times)
    out = {"seconds_per_call": sec, "roofline_gflops": statistics.median(roofs),
           "roofline_gflops_min": min(roofs), "roofline_gflops_max": max(roofs)}
    if flops:
        out["gflops"] = flops / sec / 1e9
        out["roofline_ratio"] = statistics.median(
            flops / t / 1e9 / ((roofs[i] + roofs[i + 1]) / 2) for i, t in enumerate(times))
    return out


@contextlib.contextmanager
def peak_memory(device: torch.device):
    """Yields a dict whose 'peak_bytes' is set on exit: max allocated on CUDA, peak RSS on CPU
    (the process's high-water mark, reset on entry where Linux allows)."""
    out: dict = {}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        out["before_bytes"] = int(torch.cuda.memory_allocated(device))
    else:
        out["rss_reset"] = reset_peak_rss()
        out["before_bytes"] = current_rss_bytes()
    try:
        yield out
    finally:
        _sync(device)
        if device.type == "cuda":
            out["peak_bytes"] = int(torch.cuda.max_memory_allocated(device))
            out["kind"] = "cuda_max_allocated"
        else:
            out["peak_bytes"] = peak_rss_bytes()
            out["kind"] = "rss_peak" if out.pop("rss_reset") else "rss_peak_since_start"


def op_time_shares(fn: Callable[[], object], wall_s: float | None = None) -> dict:
    """Where one call's wall time goes (CPU only), from one profiled call: self time inside
    aten ops, the part of it in convolutions/matmuls, and the rest of that call's wall time
    (Python, module calls, dispatch glue; the profiler's own cost inflates this share a little,
    so it is an upper bound). Shares use the profiled call's own wall time, so a busy machine
    slows numerator and denominator alike."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        fn()
        profiled_wall = time.perf_counter() - t
    aten_us = flop_us = 0.0
    for e in prof.events():
        if not e.name.startswith("aten::"):
            continue
        aten_us += e.self_cpu_time_total
        if any(k in e.name for k in MATMUL_FLOP_OPS):
            flop_us += e.self_cpu_time_total
    aten_s, flop_s = aten_us / 1e6, flop_us / 1e6
    return {
        "profiled_wall_s": profiled_wall,
        "aten_s": aten_s,
        "conv_matmul_s": flop_s,
        "overhead_share": min(1.0, max(0.0, 1.0 - aten_s / profiled_wall)),
        "conv_matmul_share": min(1.0, flop_s / profiled_wall),
    }


# --- the measured paths -------------------------------------------------------------------------
class _Timeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float):
    if seconds <= 0 or not hasattr(signal, "SIGALRM"):
        yield
        return

    def fire(signum, frame):
        raise _Timeout(f"exceeded {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _path_setup(path: str, device: torch.device, precision: str):
    """(channels_last, autocast dtype, compile) of a path; 'tuned' = channels_last + autocast
    (autocast only on CUDA: on CPU the tuned path stays exact fp32), 'bf16' = channels_last +
    bf16 autocast on any device (what training's --precision auto picks on CPUs with AMX or AVX512-BF16),
    'compile' = tuned + torch.compile."""
    from ..core.device import autocast_dtype

    if path == "eager":
        return False, None, False
    if path == "bf16":
        return True, autocast_dtype(device, "bf16"), False
    amp = autocast_dtype(device, precision) if device.type == "cuda" else None
    return True, amp, path == "compile"


def _images(batch: int, channels: int, size: int, device: torch.device, channels_last: bool, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, channels, size, size, generator=g) * 2 - 1).to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def bench_translation(model, size: int, batch: int, path: str, device: torch.device, iters: int,
                      precision: str, compile_timeout: float, shares: bool) -> dict:
    from ..core.inference import translate

    channels_last, amp, use_compile = _path_setup(path, device, precision)
    m = copy.deepcopy(model).to(device).eval()
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    res: dict = {"autocast": str(amp).replace("torch.", "") if amp else None, "channels_last": channels_last}
    run_model = m
    if use_compile:
        t = time.perf_counter()
        try:
            with _time_limit(compile_timeout), torch.inference_mode():
                m.enc["a"] = torch.compile(m.enc["a"])  # the two networks a->b translation runs
                m.gen["b"] = torch.compile(m.gen["b"])
                x1 = _images(1, m.config.channels_a, size, device, channels_last, 0)
                with _autocast(device, amp):
                    translate(m, x1, "a", tile=None)
                    translate(m, _images(batch, m.config.channels_a, size, device, channels_last, 0), "a", tile=None)
        except _Timeout as exc:
            return {"skipped": f"torch.compile {exc}"}
        except Exception as exc:  # a compiler missing or failing is a result, not a crash
            return {"skipped": f"torch.compile failed: {type(exc).__name__}: {str(exc)[:200]}"}
        res["compile_s"] = time.perf_counter() - t
    roof_dtype = amp or torch.float32
    for b in (1, batch):
        x = _images(b, m.config.channels_a, size, device, channels_last, 1)

        def call():
            with _autocast(device, amp):
                return translate(run_model, x, "a", tile=None)

        with peak_memory(device) as mem:
            times, roofs = time_calls(call, device, iters, between=lambda: matmul_roofline(device, roof_dtype, 0.2))
        if use_compile:  # the same arithmetic as eager; count it where the counter sees the ops
            flops = count_flops(lambda: translate(model.to(device).eval(), x.contiguous(), "a", tile=None))
        else:
            flops = count_flops(call)
        fig = roofline_figures(flops, times, roofs)
        sec = fig["seconds_per_call"]
        entry = {
            "ms_per_image": 1e3 * sec / b, "images_per_s": b / sec, **fig,
            "flops_per_image": None if flops is None else flops / b,
            "peak_memory_bytes": mem["peak_bytes"], "peak_memory_kind": mem["kind"],
            "memory_increase_bytes": mem["peak_bytes"] - mem["before_bytes"],
        }
        if shares and device.type == "cpu" and b == 1 and not use_compile:
            entry.update(op_time_shares(call, sec))
        res[f"batch{b}"] = entry
    return res


def bench_training(config, size: int, batch: int, path: str, device: torch.device, iters: int,
                   precision: str, shares: bool, seed: int = 0) -> dict:
    from ..core.config import ConfigError
    from ..core.device import precision_of
    from ..core.networks import UNIT
    from ..core.trainer import Trainer

    channels_last, amp, use_compile = _path_setup(path, device, precision)
    if use_compile:
        return {"skipped": "torch.compile is measured for translation only"}
    try:
        cfg = config.replace(image_size=size)
    except ConfigError as exc:
        return {"skipped": f"preset cannot train at {size} px: {exc}"}
    torch.manual_seed(seed)
    trainer = Trainer(UNIT(cfg), device=device, seed=seed, precision=precision_of(amp), channels_last=channels_last)
    x_a = _images(batch, cfg.channels_a, size, device, False, 2)
    x_b = _images(batch, cfg.channels_b, size, device, False, 3)

    def call():
        return trainer.train_step(x_a, x_b)

    roof_dtype = amp or torch.float32
    with peak_memory(device) as mem:
        times, roofs = time_calls(call, device, iters, between=lambda: matmul_roofline(device, roof_dtype, 0.2))
    flops = count_flops(call)
    fig = roofline_figures(flops, times, roofs)
    sec = fig["seconds_per_call"]
    res = {
        "autocast": str(amp).replace("torch.", "") if amp else None, "channels_last": channels_last, "batch": batch,
        "ms_per_iteration": 1e3 * sec, "flops_per_iteration": flops, **fig,
        "peak_memory_bytes": mem["peak_bytes"], "peak_memory_kind": mem["kind"],
        "memory_increase_bytes": mem["peak_bytes"] - mem["before_bytes"],
    }
    if shares and device.type == "cpu":
        res.update(op_time_shares(call, sec))
    return res


def run_bench(
    device: str | torch.device = "cpu",
    presets: list[str] | None = None,
    sizes: list[int] | None = None,
    batch: int = 8,
    train_batch: int | None = None,
    iters: int = 3,
    threads: int | None = None,
    paths: list[str] | None = None,
    precision: str = "bf16",
    train: bool = True,
    shares: bool = True,
    compile_max_size: int = 64,
    compile_timeout: float = 180.0,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Measure every (preset, size, path); returns the JSON-ready report (see ``add_cli``)."""
    from ..core.config import preset as make_preset
    from ..core.device import resolve_device
    from ..core.networks import UNIT

    dev = resolve_device(device)
    if threads:
        torch.set_num_threads(int(threads))
    presets = presets or ["digits32", "emoji64", "image256"]
    paths = paths or ["eager", "tuned"]
    for p in paths:
        if p not in PATHS:
            raise ValueError(f"unknown bench path {p!r}; choose from {PATHS}")
    log = log or (lambda s: None)
    roof_start = matmul_roofline(dev, torch.float32)  # also allocates the roofline operands up front
    report = {
        "machine": {
            "cpu": cpu_model(), "nproc": os.cpu_count(), "threads": torch.get_num_threads(),
            "device": str(dev), "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            "torch": torch.__version__, "python": platform.python_version(),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32) if dev.type == "cuda" else None,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
        "roofline_fp32_gflops_at_start": roof_start,
        "settings": {"batch": batch, "train_batch": train_batch or batch, "iters": iters, "paths": paths,
                     "precision": precision, "sizes": sizes},
        "results": [],
    }
    for name in presets:
        config = make_preset(name)
        for size in sizes or [config.image_size]:
            torch.manual_seed(0)
            model = UNIT(config, discriminators=False)
            for path in paths:
                if path == "compile" and size > compile_max_size:
                    continue
                log(f"{name} {size}px {path}: translation")
                row = {"preset": name, "size": size, "path": path,
                       "translator_parameters": model.num_parameters()["translator"]}
                row["translate"] = bench_translation(model, size, batch, path, dev, iters, precision,
                                                     compile_timeout, shares)
                if train:
                    log(f"{name} {size}px {path}: training")
                    row["train"] = bench_training(config, size, train_batch or batch, path, dev, iters, precision, shares)
                report["results"].append(row)
    return report


# --- output ---------------------------------------------------------------------------------------
def _fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def format_table(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# {m['device']} ({m['gpu'] or m['cpu']}), {m['threads']} thread(s), torch {m['torch']}, {m['date']}",
        f"{'preset':9} {'px':>4} {'path':7} | {'tr ms/img b1':>12} {'img/s bN':>8} {'GF/s':>6} {'%roof':>5} "
        f"{'ovh%':>5} {'MiB':>6} | {'train ms/it':>11} {'GF/s':>6} {'%roof':>5} {'ovh%':>5} {'conv%':>5} {'MiB':>6}",
    ]
    for r in report["results"]:
        t, tr = r["translate"], r.get("train") or {}
        head = f"{r['preset']:9} {r['size']:>4} {r['path']:7} | "
        if "skipped" in t:
            lines.append(head + f"skipped: {t['skipped']}")
            continue
        keys = [k for k in t if k.startswith("batch")]
        b1, bn = t[keys[0]], t[keys[-1]]
        pct = lambda d, k: None if d.get(k) is None else 100 * d[k]  # noqa: E731
        left = (f"{_fmt(b1['ms_per_image'], '12.2f')} {_fmt(bn['images_per_s'], '8.1f')} {_fmt(b1.get('gflops'), '6.1f')} "
                f"{_fmt(pct(b1, 'roofline_ratio'), '5.1f')} {_fmt(pct(b1, 'overhead_share'), '5.1f')} "
                f"{_fmt(max(b1['memory_increase_bytes'], bn['memory_increase_bytes']) / 2**20, '6.0f')}")
        if "skipped" in tr or not tr:
            right = tr.get("skipped", "-")[:60]
        else:
            right = (f"{_fmt(tr['ms_per_iteration'], '11.1f')} {_fmt(tr['gflops'], '6.1f')} {_fmt(pct(tr, 'roofline_ratio'), '5.1f')} "
                     f"{_fmt(pct(tr, 'overhead_share'), '5.1f')} {_fmt(pct(tr, 'conv_matmul_share'), '5.1f')} "
                     f"{_fmt(tr['memory_increase_bytes'] / 2**20, '6.0f')}")
        lines.append(head + left + " | " + right)
    lines.append("GF/s: achieved GFLOP/s (FlopCounterMode FLOPs / median wall time); %roof: median over timed calls "
                 "of achieved GFLOP/s over a large matmul sampled just before and after that call; ovh%: wall time outside aten ops (Python, dispatch); "
                 "conv%: wall time in conv/matmul kernels; MiB: peak memory above the level before the measurement "
                 "(RSS high-water mark on CPU, max allocated on CUDA; totals in the JSON).")
    return "\n".join(lines)


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}") from None


def run_cli(args) -> int:
    report = run_bench(
        device=args.device, presets=[p for p in args.presets.split(",") if p] if args.presets else None,
        sizes=_int_list(args.sizes) if args.sizes else None, batch=args.batch, train_batch=args.train_batch,
        iters=args.iters, threads=args.threads, paths=[p for p in args.paths.split(",") if p],
        precision=args.precision, train=not args.no_train, shares=not args.no_profile,
        compile_max_size=args.compile_max_size, compile_timeout=args.compile_timeout,
        log=lambda s: print(s, file=sys.stderr, flush=True),
    )
    report["command"] = "python -m unit_nodes " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else None
    print(format_table(report))
    if args.json:
        from ..core.weights import atomic_write_text

        atomic_write_text(args.json, json.dumps(report, indent=2))
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="measure translation/training speed, memory and roofline ratios",
        description="Per preset and image size: translation ms/image and images/s (batch 1 and --batch), "
        "training ms/iteration (one D step + one E/G step), peak memory, FLOPs (torch.utils.flop_counter), "
        "achieved GFLOP/s and its ratio to a large matmul measured in the same run, for the plain eager fp32 "
        "path and the tuned path (channels_last; bf16/fp16 autocast on CUDA; torch.compile with --paths compile); "
        "--paths bf16 is channels_last with bf16 autocast on any device (CPUs with AMX or AVX512-BF16: training's default).",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--presets", default="digits32,emoji64,image256", help="comma-separated presets")
    p.add_argument("--sizes", default=None, help="comma-separated image sizes in px (default: each preset's own)")
    p.add_argument("--batch", type=int, default=8, help="the larger translation batch (default 8)")
    p.add_argument("--train-batch", type=int, default=None, help="images per domain per training iteration (default: --batch)")
    p.add_argument("--iters", type=int, default=3, help="timed calls per measurement, after one warm-up (median)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's default)")
    p.add_argument("--paths", default="eager,tuned", help="eager, tuned, bf16 and/or compile (default eager,tuned)")
    p.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "auto"), help="autocast dtype of the tuned path on CUDA")
    p.add_argument("--no-train", action="store_true", help="translation only")
    p.add_argument("--no-profile", action="store_true", help="skip the profiler pass (overhead shares)")
    p.add_argument("--compile-max-size", type=int, default=64, help="largest size tried with torch.compile (default 64)")
    p.add_argument("--compile-timeout", type=float, default=180.0, help="seconds allowed for compiling (default 180)")
    p.add_argument("--json", default=None, help="also write the report to this JSON file")
    p.set_defaults(func=run_cli)
