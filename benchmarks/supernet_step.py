"""Supernet step benchmark: stage-1 and stage-2 search steps and a shortened full search.

One step = one architecture update plus one weight update on the same batch (first-order, claim 6),
the hot loop of every trial: two passes (``arch_step: alternate``) or one (``joint``). Runs on the current device without Ray; prints a table (device, variant,
median and p90 ms/step, images/s, peak memory, GPU busy fraction from the profiler) and writes it as
JSON. Variants compare each speed lever against the plain path so its gain (and its sameness: the
supernet accuracy of a short seeded search) is measured, not assumed.

  python benchmarks/supernet_step.py                      # DARTS geometry on CUDA, small one on CPU
  python benchmarks/supernet_step.py --layers 8 --channels 16 --batch 64 --json out.json
  python benchmarks/supernet_step.py --preset fashion --variants shared-relu,compiled --threads 1,2

The "compile s" column is the first step of a variant (the compile itself, for "compiled"; one plain step
otherwise): a stage pays it once, so a compiled stage wins only if its steps x (eager - compiled) exceed it.
"""
from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import time

import torch

from cost_models import derived_network_cost, search_cost_table
from searchspace.config import SearchConfig, preset
from searchspace.groups import DEFAULT_GROUPS, Groups
from trainables import build_supernet, run_search, search_epoch

log = logging.getLogger("supernet_step")

VARIANTS = {
    # name: config overrides, each lever added to the one above; "plain" is DARTS's structure (one ReLU per
    # candidate, alpha and weights in two passes per batch, NCHW)
    "plain": {"fast": False, "compile": "off", "arch_step": "alternate", "channels_last": "off"},
    "shared-relu": {"fast": True, "compile": "off", "arch_step": "alternate", "channels_last": "off"},
    "channels-last": {"fast": True, "compile": "off", "arch_step": "alternate", "channels_last": "on"},
    # one forward/backward for both gradients (arch_step joint: the default with the same batches)
    "joint": {"fast": True, "compile": "off", "arch_step": "joint", "channels_last": "on"},
    "joint-nchw": {"fast": True, "compile": "off", "arch_step": "joint", "channels_last": "off"},
    # torch.compile of the losses (forward + backward), mode reduce-overhead on CUDA; the default levers
    "compiled": {"fast": True, "compile": "on", "arch_step": "joint", "channels_last": "auto"},
    "compiled-alternate": {"fast": True, "compile": "on", "arch_step": "alternate", "channels_last": "auto"},
}


def stage2_candidates(config: SearchConfig) -> list[list[tuple[str, ...]]]:
    """A plausible stage-1 outcome, seeded: [alpha set][edge] -> every operator of one group."""
    groups = Groups(DEFAULT_GROUPS)
    g = torch.Generator().manual_seed(0)
    n_edges = sum(range(2, config.nodes + 2))
    n_sets = 2 if config.share_alphas else config.layers
    pick = torch.randint(0, len(groups.names), (n_sets, n_edges), generator=g).tolist()
    return [[groups.ops(groups.names[k]) for k in row] for row in pick]


def time_steps(config: SearchConfig, stage: int, steps: int, warmup: int, device: torch.device) -> dict:
    config = config.replace(lambda_time=0.1, lambda_energy=0.1)  # the cost term in the step, as in a trial
    st = build_supernet(config, search_cost_table(config), stage, stage2_candidates(config) if stage == 2 else None,
                        device=device)
    x = torch.randn(config.batch_size, config.in_channels, config.image_size, config.image_size, device=device)
    y = torch.randint(0, 10, (config.batch_size,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    search_epoch(st, [(x, y)], None, True, config.grad_clip)  # compiles both losses when compiled
    sync()
    first_s = time.perf_counter() - t0
    if st.compiled is not None and st.compiled.fallback:
        raise RuntimeError(f"the compiled variant fell back to eager: {st.compiled.fallback}")
    for _ in range(max(0, warmup - 1)):
        search_epoch(st, [(x, y)], None, True, config.grad_clip)
    sync()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        search_epoch(st, [(x, y)], None, True, config.grad_clip)
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    busy = None
    if device.type == "cuda":
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            t0 = time.perf_counter()
            for _ in range(3):
                search_epoch(st, [(x, y)], None, True, config.grad_clip)
            sync()
            wall_us = (time.perf_counter() - t0) * 1e6
        kernel_us = sum(e.device_time_total for e in prof.key_averages())
        busy = kernel_us / wall_us
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB, process-wide high-water mark
    times.sort()
    med = statistics.median(times)
    return {"stage": stage, "compile_s": first_s, "median_ms": med, "p90_ms": times[int(0.9 * (len(times) - 1))],
            "images_per_s": config.batch_size / med * 1e3, "peak_mib": peak, "gpu_busy": busy}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--layers", type=int, help="cells (default 8 on CUDA, 5 on CPU)")
    p.add_argument("--channels", type=int, help="initial channels (default 16 on CUDA, 8 on CPU)")
    p.add_argument("--batch", type=int, help="batch size (default 64 on CUDA, 32 on CPU)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant and stage")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (allocator, cudnn autotune)")
    p.add_argument("--search-images", type=int, default=512,
                   help="synthetic training images of the shortened full search (0 skips it)")
    p.add_argument("--preset", help="take layers, channels, batch and dataset from this search preset "
                                     "(e.g. fashion: the main job's trial geometry)")
    p.add_argument("--threads", default="", help="comma list of torch thread counts to time (CPU; default: "
                                                 "torch's current count)")
    p.add_argument("--variants", default="plain,shared-relu,channels-last,joint",
                   help=f"comma list of {', '.join(VARIANTS)} (default plain,shared-relu,channels-last,joint: "
                        "each adds one lever; compiled takes minutes to compile on a small CPU)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if cuda else "cpu")
    base = {"dataset": "cifar10"}
    if args.preset:
        p_ = preset(args.preset)
        base = {"dataset": p_["dataset"], "layers": p_["layers"], "channels": p_["channels"],
                "batch_size": p_["batch_size"]}
    geometry = dict(layers=args.layers or base.get("layers", 8 if cuda else 5),
                    channels=args.channels or base.get("channels", 16 if cuda else 8),
                    batch_size=args.batch or base.get("batch_size", 64 if cuda else 32))
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    thread_counts = [int(t) for t in args.threads.split(",") if t] or [torch.get_num_threads()]
    rows = []
    for threads in thread_counts:
        torch.set_num_threads(threads)
        name = torch.cuda.get_device_name() if cuda else f"CPU ({threads} threads)"
        for variant in args.variants.split(","):
            config = SearchConfig.from_dict({**geometry, "dataset": base["dataset"], "device": device.type,
                                             **VARIANTS[variant]})
            for stage in (1, 2):
                r = time_steps(config, stage, args.steps, args.warmup, device)
                rows.append({"device": name, "variant": variant, **geometry, **r})
                log.info("%s %s stage %d: %.1f ms/step, first step %.1f s", name, variant, stage, r["median_ms"],
                         r["compile_s"])
            if args.search_images:
                # a shortened full search (data on the device, both stages, target network), same seed per variant
                cfg = config.replace(dataset="synthetic", train_size=args.search_images, val_size=128,
                                     test_size=128, max_epochs=2, patience=2, warmup_epochs=0, eval_epochs=1,
                                     augment=True)
                t0 = time.perf_counter()
                res = run_search(cfg, search_cost_table(cfg), network_cost=lambda g: derived_network_cost(g, cfg))
                rows.append({"device": name, "variant": variant, **geometry, "stage": "search",
                             "seconds": time.perf_counter() - t0, "supernet_accuracy": res.supernet_accuracy,
                             "stage_seconds": res.phase_seconds})
    _print(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


def _print(rows: list[dict]) -> None:
    head = (f"{'device':<28} {'variant':<18} {'stage':<7} {'compile s':>9} {'median ms':>10} {'p90 ms':>8} "
            f"{'img/s':>8} {'peak MiB':>9} {'busy':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        if r["stage"] == "search":
            print(f"{r['device']:<28} {r['variant']:<18} {'search':<7} {'':>9} {r['seconds'] * 1e3:>10.0f} "
                  f"{'':>8} {'':>8} {'':>9} {'':>6}  supernet acc {r['supernet_accuracy']:.4f}")
            continue
        busy = "n/a" if r["gpu_busy"] is None else f"{r['gpu_busy']:.0%}"
        print(f"{r['device']:<28} {r['variant']:<18} {r['stage']:<7} {r['compile_s']:>9.1f} {r['median_ms']:>10.1f} "
              f"{r['p90_ms']:>8.1f} "
              f"{r['images_per_s']:>8.0f} {r['peak_mib']:>9.0f} {busy:>6}")


if __name__ == "__main__":
    raise SystemExit(main())
