"""Search quality (issue 10): does the searched accuracy / DRAM-energy front beat random search at equal compute?

One profile (default mobile-npu). The search side runs a lambda scan (``--knob lambda_time`` over
``--lambdas``), one two-stage search per lambda (search seed ``--search-seed``); the random side trains
random genotypes of the same cells: half with operators drawn uniformly, half cost-stratified (a pool of
genotypes whose operator mix is itself drawn from a Dirichlet, so skip-heavy and conv-heavy cells both
occur, cut into equal-count DRAM-energy strata, one genotype per stratum). Both sides train every genotype
with the identical target protocol (``trainables.train_target``) under each of ``--seeds`` (training seeds),
and the random side gets the same total compute as the search side: as many genotypes as the search's
wall seconds (stages + retraining) buy at the measured seconds per target training.

It prints one table: per point the accuracy mean +- std over the training seeds, DRAM time and energy
(``cost_models.derived_network_cost``: the deployed network), skips per cell; then the hypervolume of
both fronts (minimise error and energy) on one reference point, the largest DRAM-energy saving over the
random median at <= 0.5 pt accuracy loss, and the issue's target checks.

  python benchmarks/search_quality.py --quick                  # ~10 min on 2 busy CPU cores
  python benchmarks/search_quality.py                          # fashion geometry, < 40 min on 2 CPU cores
  python benchmarks/search_quality.py --geometry darts         # 8 cells, C=16, 60,000 images: a GPU
  python benchmarks/search_quality.py --quick --set derive_rank=stage1 stage2_start=representative  # "before"
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import time
from dataclasses import dataclass

import numpy as np

from cost_models import derived_network_cost, search_cost_table
from searchspace.config import SearchConfig, parse_set, preset
import searchspace.genotype
from searchspace.genotype import Genotype
from searchspace.layout import reduction_cells
from searchspace.ops import CANDIDATES
from trainables import load_datasets, run_search, train_target

GEOMETRIES = {
    # the fashion preset: 3 cells x 6 channels, 1,000 search images, 2,000 target images, 3 target epochs
    # (test_size 1000: the 1,000 test images of the published result; the preset now tests the whole split)
    "fashion": dict(preset("fashion"), test_size=1000),
    # ~10 minutes on 2 busy cores: 3 cells x 4 channels, 300 search images, 2-epoch stages and target
    "quick": dict(preset("fashion"), train_size=300, val_size=200, test_size=500, channels=4, batch_size=50,
                  max_epochs=2, patience=1, warmup_epochs=1, eval_epochs=2, eval_train_size=600),
    # DARTS's search geometry on all of Fashion-MNIST, 10-epoch target (a GPU)
    "darts": dict(preset("fashion"), layers=8, channels=16, train_size=0, val_size=5000, test_size=0, batch_size=96,
                  max_epochs=10, patience=3, warmup_epochs=2, eval_epochs=10, eval_train_size=0,
                  eval_batch_size=128, device="cuda"),
}
# the network the user ships, whose DRAM cost the loss weighs and the table reports: DARTS's evaluation
# network (20 cells, 36 channels) at the dataset's image size. At the search geometry itself every tensor fits
# on chip and all genotypes cost within a few % of each other (issue 16), so there is no front to find.
DEPLOY = dict(deploy_layers=20, deploy_channels=36)
LAMBDAS = {"quick": [0.0, 2.0, 8.0], "fashion": [0.0, 0.5, 2.0, 8.0], "darts": [0.0, 0.5, 2.0, 8.0]}
CONVS = {"sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5"}
MAX_LOSS_PT = 0.5  # accuracy points


@dataclass(frozen=True)
class Point:
    method: str  # search / uniform / stratified
    label: str
    genotype: Genotype
    accs: tuple[float, ...]  # one per training seed
    time_us: float
    energy_uj: float

    @property
    def acc(self) -> float:
        return statistics.fmean(self.accs)

    @property
    def std(self) -> float:
        return statistics.pstdev(self.accs) if len(self.accs) > 1 else 0.0


def random_genotype(reductions: list[bool], nodes: int, rng: random.Random, op_probs=None) -> Genotype:
    """Two distinct inputs per node uniformly; operators uniform, or drawn from ``op_probs``."""
    return searchspace.genotype.random_genotype(reductions, nodes, rng, CANDIDATES, op_probs)


def stratified(config: SearchConfig, reductions: list[bool], n: int, rng: random.Random, pool: int = 300) -> list[Genotype]:
    """``n`` genotypes, one per equal-count DRAM-energy stratum of a Dirichlet-mixed pool."""
    if n <= 0:
        return []
    nprng = np.random.default_rng(rng.randrange(2 ** 31))
    gens = [random_genotype(reductions, config.nodes, rng, list(nprng.dirichlet(np.ones(len(CANDIDATES)))))
            for _ in range(pool)]
    gens.sort(key=lambda g: derived_network_cost(g, config).dram_energy_uj)
    bounds = np.linspace(0, pool, n + 1).astype(int)
    return [gens[rng.randrange(lo, hi)] for lo, hi in zip(bounds[:-1], bounds[1:])]


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (error, energy), both minimised, inside the box up to ``ref``."""
    pts = sorted((e, err) for err, e in points if err < ref[0] and e < ref[1])
    front, best = [], float("inf")
    for e, err in pts:
        if err < best:
            front.append((e, err))
            best = err
    hv = 0.0
    for i, (e, err) in enumerate(front):
        nxt = front[i + 1][0] if i + 1 < len(front) else ref[1]
        hv += (nxt - e) * (ref[0] - err)
    return hv


def normal_kind(g: Genotype) -> str:
    ops = [op for c in g.cells if not c.reduction for op in c.ops()]
    if ops and all(op == "skip_connect" for op in ops):
        return "identity"
    if ops and all(op in CONVS for op in ops):
        return "all-conv"
    return "mixed"


def train_point(config: SearchConfig, genotype: Genotype, seeds: list[int], data) -> tuple[tuple[float, ...], float]:
    """Accuracy under each training seed (the target protocol), and the seconds it took."""
    t0 = time.perf_counter()
    accs = tuple(train_target(config.replace(seed=s), genotype, data).accuracy for s in seeds)
    return accs, time.perf_counter() - t0


def search_side(config: SearchConfig, knob: str, lambdas: list[float], seeds: list[int], search_seed: int,
                data, on_point=None) -> tuple[list[Point], float, float]:
    """One search per lambda, each derived genotype retrained under every training seed: (points, wall seconds
    of searches + retraining, seconds per retrained genotype)."""
    log = logging.getLogger("search_quality")
    points: list[Point] = []
    search_s = train_s = 0.0
    for lam in lambdas:
        cfg = config.replace(**{knob: lam, "seed": search_seed})
        t0 = time.perf_counter()
        # the trial's own target training is skipped (eval_epochs 0): every point is retrained below with
        # the identical protocol and seeds as the random genotypes
        result = run_search(cfg.replace(eval_epochs=0), search_cost_table(cfg))
        search_s += time.perf_counter() - t0
        accs, secs = train_point(config, result.genotype, seeds, data)
        train_s += secs
        cost = derived_network_cost(result.genotype, config)
        points.append(Point("search", f"s{search_seed} {knob}={lam:g}", result.genotype, accs, cost.dram_time_us,
                            cost.dram_energy_uj))
        log.info("search seed %d %s=%g: acc %.4f, %.3f uJ, skips %s", search_seed, knob, lam, points[-1].acc,
                 cost.dram_energy_uj, result.genotype.skip_counts())
        if on_point is not None:
            on_point(points[-1], search_s + train_s)
    return points, search_s + train_s, train_s / max(1, len(lambdas))


def random_side(config: SearchConfig, n_random: int, seeds: list[int], draw_seed: int, data) -> tuple[list[Point], float]:
    """``n_random`` random genotypes (half ops uniform, half cost-stratified), each trained under every seed."""
    log = logging.getLogger("search_quality")
    reductions = [i in set(reduction_cells(config.layers)) for i in range(config.layers)]
    rng = random.Random(draw_seed)
    uniform = [random_genotype(reductions, config.nodes, rng) for _ in range((n_random + 1) // 2)]
    strat = stratified(config, reductions, n_random // 2, rng)
    points: list[Point] = []
    random_s = 0.0
    for method, gens in (("uniform", uniform), ("stratified", strat)):
        for i, g in enumerate(gens):
            accs, secs = train_point(config, g, seeds, data)
            random_s += secs
            cost = derived_network_cost(g, config)
            points.append(Point(method, f"{method[:4]}-{i}", g, accs, cost.dram_time_us, cost.dram_energy_uj))
            log.info("random %s-%d: acc %.4f, %.3f uJ", method, i, points[-1].acc, cost.dram_energy_uj)
    return points, random_s


def run(config: SearchConfig, knob: str, lambdas: list[float], seeds: list[int], search_seeds: list[int],
        max_random: int, random_points: list[Point] | None = None, n_random: int | None = None,
        on_point=None, draw_seed: int | None = None) -> tuple[list[Point], dict]:
    """The search side (every search seed x lambda), then the random side at equal compute: as many genotypes
    as the search's wall seconds buy at the measured seconds per retrained genotype (``n_random`` fixes the
    count; ``random_points``: an earlier run's random side, the same draws, trained once). ``on_point(points,
    meta)`` after every search point (the --json file is rewritten then: a long run loses nothing)."""
    data = load_datasets(config)
    points: list[Point] = []
    search_total, per_genotype = 0.0, []
    for ss in search_seeds:
        done = list(points)
        pts, secs, per = search_side(config, knob, lambdas, seeds, ss, data, None if on_point is None else (
            lambda q, sec, done=done: (done.append(q), on_point(done, {"search_seconds": search_total + sec,
                                                                       "random_seconds": 0.0, "random_genotypes": 0}))))
        points += pts
        search_total += secs
        per_genotype.append(per)
    meta = {"search_seconds": search_total, "random_seconds": 0.0, "random_genotypes": 0}
    if random_points is not None:
        return points + random_points, dict(meta, random_genotypes=len(random_points))
    if n_random is None:
        per = statistics.fmean(per_genotype) if per_genotype else 1.0
        n_random = max(4, min(max_random, int(search_total / max(per, 1e-9))))
    if n_random > 0:
        rand, random_s = random_side(config, n_random, seeds, draw_seed if draw_seed is not None else
                                     (search_seeds[0] if search_seeds else 0), data)
        points += rand
        meta.update(random_seconds=random_s, random_genotypes=n_random)
    return points, meta


def summarise(points: list[Point], cap: int) -> dict:
    """Hypervolumes (the union of every search seed's points vs every random point: equal total compute),
    the lambda-0 check (mean over search seeds), the largest saving, the issue's target checks."""
    search = [p for p in points if p.method == "search"]
    rand = [p for p in points if p.method != "search"]
    uniform = [p for p in points if p.method == "uniform"] or rand
    all_err = [1 - p.acc for p in points]
    ref = (max(all_err) + 0.01, max(p.energy_uj for p in points) * 1.05)
    box = ref[0] * ref[1]
    hv_s = hypervolume([(1 - p.acc, p.energy_uj) for p in search], ref) / box
    hv_r = hypervolume([(1 - p.acc, p.energy_uj) for p in rand], ref) / box
    by_seed: dict[str, list[Point]] = {}
    for q in search:
        by_seed.setdefault(q.label.split()[0], []).append(q)
    hv_seeds = [hypervolume([(1 - q.acc, q.energy_uj) for q in qs], ref) / box for qs in by_seed.values()]
    med_acc = statistics.median(p.acc for p in uniform)
    med_e = statistics.median(p.energy_uj for p in uniform)
    savings = [1 - p.energy_uj / med_e for p in search if p.acc >= med_acc - MAX_LOSS_PT / 100]
    lam0 = [qs[0].acc for qs in by_seed.values()]  # each seed's first point: the first lambda (0 by default)
    lam0_mean = statistics.fmean(lam0)
    lam0_spread = max(statistics.pstdev(lam0) if len(lam0) > 1 else 0.0, max(qs[0].std for qs in by_seed.values()))
    spread = max(lam0_spread, statistics.pstdev([p.acc for p in uniform]) if len(uniform) > 1 else 0.0)
    mixed = [sum(normal_kind(q.genotype) == "mixed" for q in qs) for qs in by_seed.values()]
    return {
        "reference": ref, "hv_search": hv_s, "hv_random": hv_r, "hv_search_per_seed": hv_seeds,
        "random_median_acc": med_acc, "lambda0_acc": lam0_mean, "lambda0_spread": lam0_spread,
        "random_median_energy_uj": med_e, "best_saving": max(savings) if savings else None,
        "checks": {
            "lambda0 >= random median (within spread)": lam0_mean >= med_acc - spread,
            "search HV > random HV": hv_s > hv_r,
            ">= 40% energy saving at <= 0.5 pt loss": bool(savings) and max(savings) >= 0.40,
            "no cell over the cap": cap < 0 or all(max(p.genotype.skip_counts()) <= cap for p in search),
            ">= 2 points between all-conv and identity (every search seed)": min(mixed) >= 2,
        },
    }


def print_table(config: SearchConfig, points: list[Point], summary: dict, meta: dict, seeds: list[int]) -> None:
    print(f"profile {config.profile}: {config.layers} cells x {config.channels} channels (costs: deployed "
          f"{config.deploy_layers or config.layers} cells x {config.deploy_channels or config.channels} channels, "
          f"batch {config.cost_batch}), {config.train_size or 'all'} "
          f"search images, {config.eval_epochs}-epoch target on {config.eval_train_size or 'the search'} images, "
          f"training seeds {seeds}; search {meta['search_seconds']:.0f} s, random {meta['random_seconds']:.0f} s "
          f"({meta['random_genotypes']} genotypes)")
    print(f"{'method':<10} {'point':<18} {'acc mean':>8} {'± std':>7} {'DRAM us':>9} {'DRAM uJ':>9} "
          f"{'skips/cell':<12} normal")
    for p in points:
        print(f"{p.method:<10} {p.label:<18} {p.acc:>8.4f} {p.std:>7.4f} {p.time_us:>9.2f} {p.energy_uj:>9.3f} "
              f"{'/'.join(map(str, p.genotype.skip_counts())):<12} {normal_kind(p.genotype)}")
    saving = summary["best_saving"]
    print(f"hypervolume (error x energy, normalised to the box up to ref {summary['reference'][0]:.3f}, "
          f"{summary['reference'][1]:.3f} uJ): search {summary['hv_search']:.4f} (per search seed "
          f"{', '.join(f'{h:.4f}' for h in summary['hv_search_per_seed'])}), random {summary['hv_random']:.4f}")
    print(f"lambda-0 accuracy over search seeds {summary['lambda0_acc']:.4f} +- {summary['lambda0_spread']:.4f}")
    print(f"random (uniform) median: acc {summary['random_median_acc']:.4f}, {summary['random_median_energy_uj']:.3f} uJ;"
          f" largest search saving at <= {MAX_LOSS_PT} pt loss: "
          f"{'none' if saving is None else f'{100 * saving:.1f} %'}")
    for name, ok in summary["checks"].items():
        print(f"  [{'x' if ok else ' '}] {name}")


def load_random(path: str, seeds: list[int]) -> tuple[list[Point], float]:
    """The random points of an earlier ``--json`` (same training seeds, else refused) and their seconds."""
    with open(path) as f:
        saved = json.load(f)
    if list(saved.get("seeds", seeds)) != list(seeds):
        raise SystemExit(f"--random-from {path}: trained under seeds {saved['seeds']}, not {seeds}")
    return [Point(q["method"], q["label"], Genotype.from_dict(q["genotype"]), tuple(q["accs"]), q["dram_time_us"],
                  q["dram_energy_uj"]) for q in saved["points"] if q["method"] != "search"], saved["meta"]["random_seconds"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--geometry", choices=("fashion", "darts"), default="fashion", help="search/target geometry")
    p.add_argument("--quick", action="store_true", help="a smaller geometry and three lambdas (~10 min, 2 CPU cores)")
    p.add_argument("--profile", default="mobile-npu", help="processor profile (default mobile-npu)")
    p.add_argument("--knob", default="lambda_time", choices=("lambda_time", "lambda_energy"), help="the scanned weight")
    p.add_argument("--lambdas", type=float, nargs="+", help="scan points (default per geometry)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds of every genotype (>= 2)")
    p.add_argument("--search-seeds", type=int, nargs="*", default=[0], help="one scan per search seed (none: the random side only); the first "
                   "also seeds the random draws")
    p.add_argument("--random", type=int, metavar="N", help="random genotypes to train (default: as many as the "
                   "search's seconds buy, at most --max-random; 0: none, for a later --random-from)")
    p.add_argument("--draw-seed", type=int, help="seed of the random genotypes (default: the first search seed; "
                   "another value draws others, to add to an earlier random side with --combine)")
    p.add_argument("--max-random", type=int, default=40, help="upper bound on random genotypes")
    p.add_argument("--set", dest="sets", nargs="+", default=[], metavar="KEY=VALUE", help="search config overrides")
    p.add_argument("--json", metavar="FILE", help="also write the points and the summary as JSON")
    p.add_argument("--random-from", metavar="FILE", help="take the random side from an earlier --json of the same "
                   "geometry and seeds instead of training it again (compare search variants on one random side)")
    p.add_argument("--combine", metavar="FILE", nargs="+", help="train nothing: the table of the search points of "
                   "these --json files and the random side of --random-from (or of the files)")
    args = p.parse_args(argv)
    if len(args.seeds) < 2:
        p.error("--seeds needs at least two training seeds")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("search_quality").setLevel(logging.INFO)
    geometry = "quick" if args.quick else args.geometry
    config = SearchConfig.from_dict({**GEOMETRIES[geometry], **DEPLOY, "profile": args.profile,
                                     **parse_set(args.sets)})
    lambdas = args.lambdas or LAMBDAS[geometry]
    random_points, random_s = load_random(args.random_from, args.seeds) if args.random_from else (None, 0.0)
    if args.combine:
        with open(args.combine[0]) as f:
            config = SearchConfig.from_dict(json.load(f)["config"])  # the header names what was run
        points, meta = combine(args.combine, args.seeds, random_points, random_s)
    else:
        partial = (lambda pts, meta: write_json(args.json, pts, meta, None, config, args.seeds)) if args.json else None
        points, meta = run(config, args.knob, lambdas, args.seeds, args.search_seeds, args.max_random, random_points,
                           args.random, partial, args.draw_seed)
        if random_points is not None:
            meta["random_seconds"] = random_s
    if not any(q.method == "search" for q in points) or not any(q.method != "search" for q in points):
        if args.json:
            write_json(args.json, points, meta, None, config, args.seeds)
        print(f"{len(points)} points written to {args.json} (a table needs both sides: --combine)")
        return 0
    summary = summarise(points, config.max_skip_per_cell)
    print_table(config, points, summary, meta, args.seeds)
    if args.json:
        write_json(args.json, points, meta, summary, config, args.seeds)
    return 0


def write_json(path: str, points: list[Point], meta: dict, summary: dict | None, config: SearchConfig,
               seeds: list[int]) -> None:
    with open(path, "w") as f:
        json.dump({"meta": meta, "seeds": seeds, "summary": summary, "config": config.to_dict(),
                   "points": [{"method": q.method, "label": q.label, "accs": q.accs, "dram_time_us": q.time_us,
                               "dram_energy_uj": q.energy_uj, "genotype": q.genotype.to_dict()} for q in points]},
                  f, indent=2)


def combine(paths: list[str], seeds: list[int], random_points: list[Point] | None,
            random_s: float = 0.0) -> tuple[list[Point], dict]:
    """Search points of several ``--json`` files (+ their random side unless ``random_points``)."""
    points: list[Point] = []
    meta = {"search_seconds": 0.0, "random_seconds": 0.0, "random_genotypes": 0}
    for path in paths:
        with open(path) as f:
            saved = json.load(f)
        if list(saved.get("seeds", seeds)) != list(seeds):
            raise SystemExit(f"--combine {path}: trained under seeds {saved['seeds']}, not {seeds}")
        for key in meta:
            meta[key] += saved["meta"][key]
        points += [Point(q["method"], q["label"], Genotype.from_dict(q["genotype"]), tuple(q["accs"]),
                         q["dram_time_us"], q["dram_energy_uj"]) for q in saved["points"]
                   if q["method"] == "search" or random_points is None]
    if random_points is not None:
        points += random_points
        meta.update(random_genotypes=len(random_points), random_seconds=random_s)
    return points, meta


if __name__ == "__main__":
    raise SystemExit(main())
