"""gymnasium's classic-control steps per second on this machine, next to
`air-rl/benches/programs/env_bench.rs`: one environment (`gymnasium.make`, with its wrappers,
as users step it), and 16 copies in a `SyncVectorEnv` (autoreset), random actions.

    pip install gymnasium numpy
    python3 benches/programs/env_gymnasium.py --steps 200000
"""

import argparse
import time

import gymnasium as gym
import numpy as np

ENVS = ["CartPole-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1", "Acrobot-v1"]


def single(name, steps):
    env = gym.make(name)
    env.action_space.seed(0)
    env.reset(seed=0)
    actions = [env.action_space.sample() for _ in range(4096)]
    start = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[i % len(actions)])
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def vector(name, steps):
    envs = gym.make_vec(name, num_envs=16, vectorization_mode="sync")
    envs.action_space.seed(0)
    envs.reset(seed=0)
    batches = [envs.action_space.sample() for _ in range(256)]
    rounds = steps // 16
    start = time.perf_counter()
    for r in range(rounds):
        envs.step(batches[r % len(batches)])
    return rounds * 16 / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200_000)
    args = ap.parse_args()
    print(f"gymnasium {gym.__version__}, numpy {np.__version__}")
    print(f"{'environment':<26} {'1 copy steps/s':>14} {'16 copies (sync)':>18}")
    for name in ENVS:
        print(f"{name:<26} {single(name, args.steps):>14.0f} {vector(name, args.steps):>18.0f}")


if __name__ == "__main__":
    main()
