"""Graph figures: build time and peak memory, load time, matching latency for 100 class names.

Usage: .venv/bin/python benchmarks/graph_bench.py [--hub DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

CIFAR100 = ("apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus "
            "butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach "
            "couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster "
            "house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree "
            "motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear "
            "pickup_truck pine_tree plain plate poppy porcupine possum rabbit raccoon ray road "
            "rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel "
            "streetcar sunflower sweet_pepper table tank telephone television tiger tractor train "
            "trout tulip turtle wardrobe whale willow_tree wolf woman worm").split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hub", type=Path, default=None,
                        help="hub with caption embeddings already built (else a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from mll.graph import Matcher, SemanticGraph

    start = time.perf_counter()
    graph = SemanticGraph.from_wordnet()
    build_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        graph.save(Path(tmp))
        loads = []
        for _ in range(5):
            start = time.perf_counter()
            SemanticGraph.load(Path(tmp))
            loads.append(time.perf_counter() - start)
    hub = args.hub or Path(tempfile.mkdtemp())
    matcher = Matcher.for_hub(hub)
    matcher.match(["warm", "up"])
    timings = {}
    for n in (10, 100):
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            matcher.match(CIFAR100[:n])
            runs.append(time.perf_counter() - start)
        timings[n] = statistics.median(runs)
    result = {"nodes": len(graph), "edges": graph.num_edges, "build_seconds": round(build_s, 2),
              "build_peak_rss_mb": round(peak_mb), "load_seconds": round(min(loads), 4),
              "match_10_names_seconds": round(timings[10], 3),
              "match_100_names_seconds": round(timings[100], 3)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:28} {v}")


if __name__ == "__main__":
    main()
