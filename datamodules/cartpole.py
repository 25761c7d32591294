"""cartpole: CartPole-v1 experience for the DQN, served to Lightning through an IterableDataset.

`num_envs > 1` steps that many environments at once (gymnasium's vector API): the policy sees all observations in
one batch, and each training step brings `num_envs` new transitions into the replay buffer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from datamodules import register
from datamodules.base import RL, BenchDataModule

ENV_ID = "CartPole-v1"


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions held as preallocated numpy arrays."""

    def __init__(self, capacity: int, obs_dim: int) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.size = 0
        self._next = 0

    def __len__(self) -> int:
        return self.size

    def push(self, obs, action, reward, next_obs, done) -> None:
        """Store one transition, or a batch of them (vectorised environments: one row per environment)."""
        count = np.size(action)
        i = (self._next + np.arange(count)) % self.capacity  # overwrite the oldest once full
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.dones[i] = (
            obs, action, reward, next_obs, done)
        self._next = (self._next + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        index = rng.integers(0, self.size, batch_size)
        return tuple(torch.from_numpy(a[index]) for a in
                     (self.obs, self.actions, self.rewards, self.next_obs, self.dones))


class ExperienceStream(IterableDataset):
    """Each item: act once in the env with the attached policy, store it, yield a sampled minibatch."""

    def __init__(self, datamodule: CartPole) -> None:
        self.dm = datamodule

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        for _ in range(self.dm.steps_per_epoch):
            self.dm.act()
            yield self.dm.buffer.sample(self.dm.batch_size, self.dm.rng)


class EpisodeSeeds(IterableDataset):
    """Evaluation items are episode seeds: each val/test step plays one greedy episode."""

    def __init__(self, seeds: list[int]) -> None:
        self.seeds = seeds

    def __iter__(self):
        yield from (torch.tensor(seed) for seed in self.seeds)


@register("cartpole")
class CartPole(BenchDataModule):
    """CartPole-v1 (gymnasium) with a replay buffer; the DQN attaches `policy(obs, step) -> action`."""

    kind = RL

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        buffer_capacity: int = 50_000,
        warmup_steps: int = 1_000,
        steps_per_epoch: int = 1_000,
        val_episodes: int = 5,
        test_episodes: int = 10,
        num_envs: int = 1,
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed)
        self.num_envs = num_envs
        self.buffer_capacity, self.warmup_steps = buffer_capacity, warmup_steps
        self.steps_per_epoch = steps_per_epoch
        self.val_episodes, self.test_episodes = val_episodes, test_episodes
        self.policy: Callable[[np.ndarray, int], int] | None = None
        self.env: gym.Env | None = None
        self.env_steps = 0
        self.episode_returns: list[float] = []

    def shape_facts(self) -> dict[str, Any]:
        env = gym.make(ENV_ID)
        facts = {"obs_dim": int(env.observation_space.shape[0]), "n_actions": int(env.action_space.n)}
        env.close()
        return facts

    def setup(self, stage: str | None = None) -> None:
        if self.env is not None:
            return
        self.rng = np.random.default_rng(self.seed)
        self.env = gym.make(ENV_ID) if self.num_envs == 1 else self.make_vector_env()
        self.env.action_space.seed(self.seed)
        self.obs, _ = self.env.reset(seed=self.seed)  # vector: environment i gets seed + i
        self.buffer = ReplayBuffer(self.buffer_capacity, self.env.observation_space.shape[-1])
        self._episode_return = 0.0 if self.num_envs == 1 else np.zeros(self.num_envs)
        for _ in range(math.ceil(self.warmup_steps / self.num_envs)):  # random actions fill the buffer first
            self.act(random=True)

    def act(self, random: bool = False) -> None:
        """One environment step with the policy (or uniformly random), stored in the buffer."""
        if self.num_envs > 1:
            return self.act_vector(random)
        if random or self.policy is None:
            action = int(self.env.action_space.sample())
        else:
            action = int(self.policy(self.obs, self.env_steps))
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        # Only termination ends the bootstrap; a time-limit truncation is not a terminal state.
        self.buffer.push(self.obs, action, reward, next_obs, terminated)
        self.env_steps += 1
        self._episode_return += reward
        self.obs = next_obs
        if terminated or truncated:
            self.episode_returns.append(self._episode_return)
            self._episode_return = 0.0
            self.obs, _ = self.env.reset()

    def act_vector(self, random: bool) -> None:
        """One step of every environment; the policy maps (num_envs, obs_dim) observations to num_envs actions."""
        if random or self.policy is None:
            actions = self.env.action_space.sample()
        else:
            actions = np.asarray(self.policy(self.obs, self.env_steps))
        next_obs, rewards, terminated, truncated, info = self.env.step(actions)
        done = terminated | truncated
        stored_next = next_obs.copy()
        if done.any():  # same-step autoreset: a finished environment's next_obs already starts its next episode
            stored_next[done] = np.stack(info["final_obs"][done])
        # Only termination ends the bootstrap; a time-limit truncation is not a terminal state.
        self.buffer.push(self.obs, actions, rewards, stored_next, terminated)
        self.env_steps += self.num_envs
        self._episode_return += rewards
        self.episode_returns += self._episode_return[done].tolist()
        self._episode_return[done] = 0.0
        self.obs = next_obs

    def make_env(self) -> gym.Env:
        return gym.make(ENV_ID)

    def make_vector_env(self) -> gym.vector.VectorEnv:
        # Same-step autoreset: the final observation of an episode arrives with its last transition (in `info`).
        return gym.make_vec(ENV_ID, self.num_envs, vectorization_mode="sync",
                            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})

    def train_dataloader(self) -> DataLoader:
        return DataLoader(ExperienceStream(self), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        # Validation and test episodes use disjoint seeds, both fixed by the run's seed.
        return DataLoader(EpisodeSeeds([10_000 + self.seed * 100 + i for i in range(self.val_episodes)]),
                          batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(EpisodeSeeds([20_000 + self.seed * 100 + i for i in range(self.test_episodes)]),
                          batch_size=None)
