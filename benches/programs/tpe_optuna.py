"""Optuna's TPE (in-memory study, sequential) on the problems of benches/programs/tpe_bench.rs:
Branin (2-D) and the 5-D mixed space; trials/s of `study.optimize` and the best value per
seed.

    python3 benches/programs/tpe_optuna.py --trials 200,1000,3000 --seeds 5
"""
import argparse
import math
import time

import optuna

p = argparse.ArgumentParser()
p.add_argument("--trials", default="200,1000,3000")
p.add_argument("--seeds", type=int, default=5)
p.add_argument("--problems", default="branin,mixed")
a = p.parse_args()
optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(t):
    x, y = t.suggest_float("x", -5, 10), t.suggest_float("y", 0, 15)
    b, c, r, s, tt = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return (y - b * x * x + c * x - r) ** 2 + s * (1 - tt) * math.cos(x) + s


def mixed(t):
    x1 = t.suggest_float("x1", -5, 5)
    x2 = t.suggest_float("x2", 1e-3, 1, log=True)
    x3 = t.suggest_int("x3", 0, 9)
    x4 = t.suggest_categorical("x4", ["a", "b", "c"])
    x5 = t.suggest_float("x5", 0, 1, step=0.1)
    return ((x1 - 1) ** 2 + (math.log10(x2) + 2) ** 2 + (x3 - 7) ** 2 / 10
            + {"a": 1, "b": 0, "c": 0.5}[x4] + (x5 - 0.3) ** 2)


for name in a.problems.split(","):
    objective = {"branin": branin, "mixed": mixed}[name]
    for n in map(int, a.trials.split(",")):
        rates, bests = [], []
        for seed in range(a.seeds):
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
            start = time.perf_counter()
            study.optimize(objective, n_trials=n)
            rates.append(n / (time.perf_counter() - start))
            bests.append(study.best_value)
        print(f"optuna {optuna.__version__} tpe {name:<6} {n:>5} trials: {sum(rates) / len(rates):>6.0f} "
              f"trials/s, best mean {sum(bests) / len(bests):.4f} (per seed "
              + " ".join(f"{b:.4f}" for b in bests) + ")")
