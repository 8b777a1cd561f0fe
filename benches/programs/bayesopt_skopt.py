"""scikit-optimize's Gaussian-process minimiser (`gp_minimize`, sequential) on the problems of
benches/programs/tpe_bench.rs that a GP takes: Branin (2-D) and the 4-D numeric space (uniform,
log-uniform, integer, quantised); trials/s and the best value per seed.

Configured like air's `BayesOptSearch` defaults: 10 random points first, then the lower
confidence bound with kappa 2.576 (minimising; air maximises the upper bound of the negated
value).

    python3 benches/programs/bayesopt_skopt.py --trials 100,200,500 --seeds 5
"""
import argparse
import math
import time

import skopt
from skopt.space import Integer, Real

p = argparse.ArgumentParser()
p.add_argument("--trials", default="100,200,500")
p.add_argument("--seeds", type=int, default=5)
p.add_argument("--problems", default="branin,numeric")
a = p.parse_args()


def branin(v):
    x, y = v
    b, c, r, s, tt = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6, 10, 1 / (8 * math.pi)
    return (y - b * x * x + c * x - r) ** 2 + s * (1 - tt) * math.cos(x) + s


def numeric(v):
    x1, x2, x3, x5 = v
    x5 = round(x5 * 10) / 10
    return (x1 - 1) ** 2 + (math.log10(x2) + 2) ** 2 + (x3 - 7) ** 2 / 10 + (x5 - 0.3) ** 2


problems = {
    "branin": (branin, [Real(-5, 10), Real(0, 15)]),
    "numeric": (numeric, [Real(-5, 5), Real(1e-3, 1, prior="log-uniform"), Integer(0, 9),
                          Real(0, 1)]),
}

for name in a.problems.split(","):
    objective, dims = problems[name]
    for n in map(int, a.trials.split(",")):
        rates, bests = [], []
        for seed in range(a.seeds):
            start = time.perf_counter()
            r = skopt.gp_minimize(objective, dims, n_calls=n, n_initial_points=10,
                                  acq_func="LCB", kappa=2.576, random_state=seed)
            rates.append(n / (time.perf_counter() - start))
            bests.append(r.fun)
        print(f"skopt {skopt.__version__} gp {name:<7} {n:>4} trials: "
              f"{sum(rates) / len(rates):>7.1f} trials/s, best mean {sum(bests) / len(bests):.4f} "
              "(per seed " + " ".join(f"{b:.4f}" for b in bests) + ")", flush=True)
