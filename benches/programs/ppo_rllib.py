"""RLlib's PPO (and PyTorch's learner step) measured like air-rl's `ppo_bench`.

    pip install "ray[rllib]==2.60.0" torch gymnasium
    python benches/programs/ppo_rllib.py --part solve --seeds 3
    python benches/programs/ppo_rllib.py --part learner

`solve`: wall time until 20 greedy evaluation episodes, run every 5 iterations, average ≥ 475
on CartPole-v1 (as `ppo_bench` measures air-rl; RLlib's training `episode_return_mean` is not
over the last 100 finished episodes — it reaches 475 after ~16,000 steps), sampling in the
driver process (`num_env_runners=0`) like air-rl's single rollout worker, with air-rl's
hyperparameters (`--variant ours`) or RLlib's tuned CartPole example (`--variant rllib`). Time
counts from `build_algo()` returning, as air-rl's counts from `Ppo::new` returning.

`learner`: samples per second through one PPO minibatch update (policy and value MLPs,
forward, backward, Adam) in plain PyTorch on the CPU — the same computation as
`timers/learner_samples_per_s`.
"""

import argparse
import time


def solve(seed, variant, max_steps):
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .debugging(seed=seed)
        .evaluation(
            evaluation_interval=5,
            evaluation_duration=20,
            evaluation_duration_unit="episodes",
            evaluation_num_env_runners=0,
            evaluation_config={"explore": False},
        )
    )
    if variant == "ours":
        config = config.training(
            lr=[[0, 1e-3], [100_000, 1e-4]],
            gamma=0.98,
            lambda_=0.8,
            train_batch_size_per_learner=256,
            minibatch_size=256,
            num_epochs=20,
            clip_param=0.2,
            vf_loss_coeff=0.5,
            entropy_coeff=0.0,
            grad_clip=0.5,
            use_kl_loss=False,
        ).rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[64, 64], fcnet_activation="tanh", vf_share_layers=False
            )
        )
    else:
        config = config.training(lr=0.0003, num_epochs=6, vf_loss_coeff=0.01).rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[32], fcnet_activation="linear", vf_share_layers=True
            )
        )
    algo = config.build_algo()
    start = time.time()
    while True:
        r = algo.train()
        runners = r.get("env_runners", {})
        mean = r.get("evaluation", {}).get("env_runners", {}).get("episode_return_mean", 0.0)
        steps = runners.get("num_env_steps_sampled_lifetime", r.get("num_env_steps_sampled_lifetime", 0))
        if mean >= 475 or steps >= max_steps:
            seconds = time.time() - start
            algo.stop()
            ray.shutdown()
            return seconds, steps, mean >= 475


def learner(hidden, minibatch, batch=4096, epochs=10):
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(2)

    def mlp(out):
        return torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, out),
        )

    pi, vf = mlp(2), mlp(1)
    params = list(pi.parameters()) + list(vf.parameters())
    opt = torch.optim.Adam(params, lr=3e-4, eps=1e-5)
    obs = torch.randn(batch, 4)
    actions = torch.randint(0, 2, (batch,))
    old_logp = torch.full((batch,), -0.69)
    adv = torch.randn(batch)
    ret = torch.randn(batch)

    def iteration():
        for _ in range(epochs):
            perm = torch.randperm(batch)
            for i in range(0, batch, minibatch):
                idx = perm[i:i + minibatch]
                logits = pi(obs[idx])
                lsm = torch.log_softmax(logits, 1)
                logp = lsm.gather(1, actions[idx, None]).squeeze(1)
                ratio = torch.exp(logp - old_logp[idx])
                a = adv[idx]
                policy = -torch.min(ratio * a, ratio.clamp(0.8, 1.2) * a).mean()
                value = ((vf(obs[idx]).squeeze(1) - ret[idx]) ** 2).mean()
                entropy = -(lsm.exp() * lsm).sum(1).mean()
                loss = policy + 0.5 * value - 0.0 * entropy
                opt.zero_grad()
                loss.backward()
                for p in params:  # per-tensor norm clipping, as burn clips
                    torch.nn.utils.clip_grad_norm_([p], 0.5)
                opt.step()

    iteration()
    rates = []
    for _ in range(3):
        start = time.time()
        iteration()
        rates.append(batch * epochs / (time.time() - start))
    return sorted(rates)[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--part", choices=["solve", "learner"], default="solve")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--variant", choices=["ours", "rllib"], default="ours")
    p.add_argument("--max-steps", type=int, default=300_000)
    args = p.parse_args()
    if args.part == "solve":
        times = []
        for seed in range(args.seeds):
            seconds, steps, solved = solve(seed, args.variant, args.max_steps)
            state = "solved (greedy mean >= 475)" if solved else "NOT solved"
            print(f"RLlib PPO ({args.variant} settings) CartPole-v1 seed {seed}: {state} in {seconds:.1f} s, {steps} env steps", flush=True)
            if solved:
                times.append(seconds)
        if times:
            times.sort()
            n = len(times)
            median = (times[(n - 1) // 2] + times[n // 2]) / 2
            print(f"median time to 475: {median:.1f} s ({len(times)} of {args.seeds} seeds solved)")
    else:
        for hidden, minibatch in [(64, 256), (64, 4096), (256, 256), (256, 4096)]:
            rate = learner(hidden, minibatch)
            print(f"PyTorch learner on CPU: hidden [{hidden}, {hidden}], minibatch {minibatch}: {rate:.0f} samples/s")


if __name__ == "__main__":
    main()
