"""cartpole: CartPole-v1 experience for the DQN, served to Lightning through an IterableDataset."""

from __future__ import annotations

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

    def push(self, obs, action: int, reward: float, next_obs, done: bool) -> None:
        i = self._next
        self.obs[i], self.actions[i], self.rewards[i], self.next_obs[i], self.dones[i] = (
            obs, action, reward, next_obs, done)
        self._next = (i + 1) % self.capacity  # overwrite the oldest once full
        self.size = min(self.size + 1, self.capacity)

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
    ) -> None:
        super().__init__(data_dir, batch_size, num_workers, seed)
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
        self.env = gym.make(ENV_ID)
        self.env.action_space.seed(self.seed)
        self.obs, _ = self.env.reset(seed=self.seed)
        self.buffer = ReplayBuffer(self.buffer_capacity, self.env.observation_space.shape[0])
        self._episode_return = 0.0
        for _ in range(self.warmup_steps):  # random actions fill the buffer before learning starts
            self.act(random=True)

    def act(self, random: bool = False) -> None:
        """One environment step with the policy (or uniformly random), stored in the buffer."""
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

    def make_env(self) -> gym.Env:
        return gym.make(ENV_ID)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(ExperienceStream(self), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        # Validation and test episodes use disjoint seeds, both fixed by the run's seed.
        return DataLoader(EpisodeSeeds([10_000 + self.seed * 100 + i for i in range(self.val_episodes)]),
                          batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(EpisodeSeeds([20_000 + self.seed * 100 + i for i in range(self.test_episodes)]),
                          batch_size=None)
