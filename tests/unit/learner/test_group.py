"""RayLearnerGroup over in-process fake ranks: sharding and padding of forward passes,
the per-step permutation of the training batch, metric prefixes, save/load/export.

The fakes stand in for the Ray actors only: ``rank.method.remote(...)`` computes at
once, ``put`` is the identity and ``wait_all`` returns the values (both record their
arguments). Each fake rank takes its shard with the real ``TensorBatch.shard``, as the
real workers do, so row order and padding are checked end to end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cpe.batch import TensorBatch
from cpe.learner.group import LearnerDied, RayLearnerGroup


class Remote:
    """``actor.method.remote(...)`` that runs the method right away."""

    def __init__(self, fn):
        self.fn = fn

    def remote(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


class FakeRank:
    """One learner rank of a pool ("policy", "value" or "reference").

    logprobs: the shard's token ids / T (policy) or -ids / T (reference), so each output
    row names its input row; values: the rank id on every position of its shard."""

    def __init__(self, pool: str, rank: int, world: int, log: list):
        self.pool, self.rank, self.world, self.log = pool, rank, world, log
        self.received: list[TensorBatch] = []
        for name in (
            "logprobs",
            "values",
            "train_step",
            "save_state",
            "save_hf",
            "load_state",
            "export_wire",
            "pid",
        ):
            setattr(self, name, Remote(getattr(self, f"_{name}")))

    def _shard(self, batch: TensorBatch) -> TensorBatch:
        self.received.append(batch)
        return batch.shard(self.rank, self.world)

    def _logprobs(self, batch: TensorBatch, temperature: float = 1.0) -> torch.Tensor:
        sign = -1.0 if self.pool == "reference" else 1.0
        self.log.append((self.pool, self.rank, "logprobs", len(batch), temperature))
        return sign * self._shard(batch).input_ids.float() / temperature

    def _values(self, batch: TensorBatch) -> torch.Tensor:
        self.log.append((self.pool, self.rank, "values", len(batch)))
        shard = self._shard(batch)
        return torch.full(tuple(shard.input_ids.shape), float(self.rank))

    def _train_step(self, batch: TensorBatch, **kwargs) -> dict[str, float]:
        self.received.append(batch)
        self.log.append((self.pool, self.rank, "train_step", tuple(sorted(kwargs.items()))))
        if self.pool == "policy":
            return {"loss": 0.5, "clip_frac": 0.125}
        return {"loss": 0.25}

    def _save_state(self, path: str) -> str:
        self.log.append((self.pool, self.rank, "save_state", path))
        return path

    def _save_hf(self, path: str) -> str | None:
        self.log.append((self.pool, self.rank, "save_hf", path))
        return path if self.rank == 0 else None

    def _load_state(self, path: str) -> dict:
        self.log.append((self.pool, self.rank, "load_state", path))
        return {}

    def _export_wire(self, bucket_mb: int) -> str:
        self.log.append((self.pool, self.rank, "export_wire", bucket_mb))
        return f"buckets-of-rank-{self.rank}"

    def _pid(self) -> str:
        return f"pid-of-{self.pool}-{self.rank}"


class Store:
    """Stand-ins for ray.put / get_all that record what passes through them."""

    def __init__(self):
        self.puts: list = []
        self.waits: list[list] = []

    def put(self, obj):
        self.puts.append(obj)
        return obj

    def wait_all(self, refs):
        self.waits.append(list(refs))
        return list(refs)


def group(policy=2, value=2, reference=0, seed=0, log=None):
    log = [] if log is None else log
    store = Store()

    def ranks(pool, world):
        return [FakeRank(pool, r, world, log) for r in range(world)]

    g = RayLearnerGroup(
        policy=ranks("policy", policy),
        value=ranks("value", value),
        mini_batch_rows=3,  # 8 rows -> ceil(8 / 3) = 3 optimizer updates
        temperature=0.7,
        seed=seed,
        reference=ranks("reference", reference),
        put=store.put,
        wait_all=store.wait_all,
    )
    return g, store, log


def batch_of(rows: int, width: int = 3) -> TensorBatch:
    """Row i: tokens 10*(i+1) + 0..width-1, reward i, edit on odd rows."""
    ids = torch.tensor([[10 * (i + 1) + t for t in range(width)] for i in range(rows)])
    return TensorBatch(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        response_mask=torch.ones(ids.shape),
        is_edit=torch.tensor([i % 2 == 1 for i in range(rows)]),
        rewards=torch.arange(rows, dtype=torch.float32),
        pair_ids=torch.arange(rows),
        group_ids=torch.arange(rows) // 2,
    )


def test_forward_passes_pad_odd_rows_and_return_exactly_the_rows_in_order():
    g, store, log = group(policy=2, value=4)
    batch = batch_of(3)
    out = g.forward_passes(batch, None, temperature=2.0, step=1)

    # pi_old: 3 rows padded to 4 over 2 ranks (last row repeated), padding dropped
    assert torch.equal(out.old_logp, batch.input_ids.float() / 2.0)
    # V: 3 rows padded to 4 over 4 ranks, one row per rank; rank 3's copy dropped
    assert out.old_values.tolist() == [[0.0] * 3, [1.0] * 3, [2.0] * 3]
    assert out.ref_logp is None and out.edit_logp is None

    # every rank of a pool got the same once-stored padded batch and took an equal shard
    for rank in g.policy + g.value:
        assert len(rank.received) == 1 and len(rank.received[0]) == 4
    assert g.policy[0].received[0] is g.policy[1].received[0]
    padded = g.policy[0].received[0]
    assert padded.input_ids[:, 0].tolist() == [10, 20, 30, 30]
    assert padded.rewards.tolist() == [0.0, 1.0, 2.0, 2.0]
    assert ("policy", 1, "logprobs", 4, 2.0) in log
    assert len(store.puts) == 2  # once per pool, not once per rank


def test_forward_passes_without_padding_keep_the_batch():
    g, store, _ = group(policy=2, value=2)
    batch = batch_of(4)
    out = g.forward_passes(batch, None, temperature=1.0, step=1)
    assert torch.equal(out.old_logp, batch.input_ids.float())
    assert out.old_values.tolist() == [[0.0] * 3, [0.0] * 3, [1.0] * 3, [1.0] * 3]
    assert all(p is batch for p in store.puts)


def test_reference_ranks_add_ref_logp_and_edits_give_edit_logp():
    g, _, log = group(policy=2, value=1, reference=1)
    batch, edits = batch_of(3), batch_of(1, width=5)
    out = g.forward_passes(batch, edits, temperature=0.5, step=1)
    assert torch.equal(out.old_logp, batch.input_ids.float() / 0.5)
    assert torch.equal(out.ref_logp, -batch.input_ids.float() / 0.5)
    assert out.old_values.tolist() == [[0.0] * 3] * 3
    # mu: the policy ranks on the edit-prompt batch (1 row padded to 2), [e, L']
    assert out.edit_logp.shape == (1, 5)
    assert torch.equal(out.edit_logp, edits.input_ids.float() / 0.5)
    assert ("reference", 0, "logprobs", 3, 0.5) in log
    assert [e for e in log if e[2] == "logprobs" and e[0] == "policy"] == [
        ("policy", 0, "logprobs", 4, 0.5),
        ("policy", 1, "logprobs", 4, 0.5),
        ("policy", 0, "logprobs", 2, 0.5),
        ("policy", 1, "logprobs", 2, 0.5),
    ]


def test_logprobs_shard_and_unpad_like_forward_passes():
    g, _, _ = group(policy=2)
    batch = batch_of(5)
    assert torch.equal(g.logprobs(batch, 1.0), batch.input_ids.float())


def received_rows(rank: FakeRank) -> list[int]:
    return [int(x) // 10 - 1 for x in rank.received[-1].input_ids[:, 0]]


def test_train_gives_every_rank_the_whole_batch_permuted_by_the_step_seed():
    g, store, log = group(policy=2, value=2, seed=11)
    batch = batch_of(8)
    metrics = g.train(batch, step=1)
    assert metrics == {
        "policy/loss": 0.5,
        "policy/clip_frac": 0.125,
        "value/loss": 0.25,
        "train/optimizer_updates": 3.0,
    }

    assert len(store.puts) == 1  # one copy for both pools
    trained = store.puts[0]
    assert all(rank.received[-1] is trained for rank in g.policy + g.value)
    order = received_rows(g.policy[0])
    assert sorted(order) == list(range(8)) and order != list(range(8))
    # a group's rows (here 2i, 2i+1) stay together and in order: they share a prompt
    assert all(order[k] // 2 == order[k + 1] // 2 and order[k] < order[k + 1] for k in (0, 2, 4, 6))
    # every field moved with its row
    assert trained.rewards.tolist() == [float(i) for i in order]
    assert trained.is_edit.tolist() == [i % 2 == 1 for i in order]
    assert trained.group_ids.tolist() == [i // 2 for i in order]

    assert ("policy", 0, "train_step", (("num_mini_batches", 3), ("temperature", 0.7))) in log
    assert ("value", 1, "train_step", (("num_mini_batches", 3),)) in log

    g.train(batch, step=1)
    assert received_rows(g.policy[0]) == order  # same seed and step: same order
    g.train(batch, step=2)
    assert received_rows(g.policy[0]) != order  # another step: another order

    same_seed, _, _ = group(seed=11)
    same_seed.train(batch, step=1)
    assert received_rows(same_seed.value[1]) == order  # e.g. after a resume


def test_save_load_and_export_reach_every_rank(tmp_path):
    g, store, log = group(policy=2, value=1, reference=1)
    g.save(tmp_path)
    assert log == [
        ("policy", 0, "save_state", str(tmp_path / "policy_state")),
        ("policy", 1, "save_state", str(tmp_path / "policy_state")),
        ("value", 0, "save_state", str(tmp_path / "value_state")),
        ("policy", 0, "save_hf", str(tmp_path / "policy_hf")),
        ("policy", 1, "save_hf", str(tmp_path / "policy_hf")),
    ]  # the frozen reference is never saved
    log.clear()

    g.load(tmp_path)
    assert log == [
        ("policy", 0, "load_state", str(tmp_path / "policy_state")),
        ("policy", 1, "load_state", str(tmp_path / "policy_state")),
        ("value", 0, "load_state", str(tmp_path / "value_state")),
    ]
    log.clear()

    store.waits.clear()
    assert g.export_ref(16) == "buckets-of-rank-0"  # rank 0's buckets, not fetched
    assert log == [("policy", 0, "export_wire", 16), ("policy", 1, "export_wire", 16)]
    # The other ranks are waited for, rank 0 through a call queued behind its export.
    assert store.waits == [["pid-of-policy-0", "buckets-of-rank-1"]]


def test_without_value_ranks_values_are_zeros_and_nothing_is_trained_or_saved_for_them(tmp_path):
    # An advantage estimator that reads no values (GRPO): no value ranks are placed.
    g, store, log = group(policy=2, value=0)
    batch = batch_of(3)
    out = g.forward_passes(batch, None, temperature=1.0, step=1)
    assert torch.equal(out.old_values, torch.zeros_like(out.old_logp))
    metrics = g.train(batch, step=1)
    assert set(metrics) == {"policy/loss", "policy/clip_frac", "train/optimizer_updates"}
    g.save(tmp_path)
    g.load(tmp_path)
    assert {entry[0] for entry in log} == {"policy"}


def test_grouped_permutation_moves_whole_groups():
    from cpe.learner.group import grouped_permutation

    groups = torch.tensor([0, 0, 0, 1, 1, 2, 0, 2])  # group 0's edit sits at row 6
    order = grouped_permutation(groups, 8, torch.Generator().manual_seed(0))
    blocks = {0: [0, 1, 2, 6], 1: [3, 4], 2: [5, 7]}
    shuffled = torch.unique(groups)[torch.randperm(3, generator=torch.Generator().manual_seed(0))]
    assert order.tolist() == [row for g in shuffled.tolist() for row in blocks[g]]
    plain = grouped_permutation(None, 5, torch.Generator().manual_seed(0))
    assert sorted(plain.tolist()) == [0, 1, 2, 3, 4]


def test_updates_are_counted_in_mini_batches_of_prompts_times_n_edits_filling_more():
    from cpe.learner.group import optimizer_updates

    # The paper: 128 prompts x 4 answers + 256 edits, mini-batches of 64 prompts x 4.
    assert optimizer_updates(128 * 4 + 256, 64 * 4) == 3
    assert optimizer_updates(128 * 4, 64 * 4) == 2  # no edits selected
    assert optimizer_updates(128 * 4 + 1, 64 * 4) == 3  # a partial mini-batch still updates
    assert optimizer_updates(4, 8) == 1


def test_the_paper_presets_make_three_updates_per_step():
    from cpe.compose import load_config
    from cpe.learner.group import optimizer_updates
    from cpe.trainer.makers import max_rows_per_step

    for preset in ("qwen2.5-7b", "qwen2.5-14b"):
        cfg = load_config([f"experiment={preset}"])
        rows = max_rows_per_step(cfg)
        assert rows == 128 * 4 + 256  # edit budget: 0.5 x 128 x 4
        assert optimizer_updates(rows, cfg.learner.mini_batch_prompts * cfg.rollout.n) == 3
    ppo = load_config(["experiment=qwen2.5-7b", "algorithm=ppo"])
    assert max_rows_per_step(ppo) == 128 * 4  # PPO makes no edits


class Died(Exception):
    """What waiting on a dead rank's call raises (Ray: ActorDiedError)."""


def dying_group(dead: tuple[str, int] | None):
    """A group whose waits fail; ``dead`` (pool, rank) is the rank the probe finds dead."""
    g, store, log = group(policy=2, value=1)
    probed: list[list] = []

    def wait_all(refs):
        raise Died("peer closed the connection")

    def find_dead(actors):
        probed.append(actors)
        return None if dead is None else getattr(g, dead[0])[dead[1]]

    g.wait_all, g.find_dead = wait_all, find_dead
    g.pids = {("policy", 0): 100, ("policy", 1): 101, ("value", 0): 200}
    return g, probed


def test_a_dead_rank_during_train_stops_with_its_name_pid_step_and_how_to_resume():
    g, probed = dying_group(("policy", 1))
    with pytest.raises(LearnerDied) as info:
        g.train(batch_of(8), step=3)
    assert str(info.value) == (
        "policy rank 1 (pid 101) died during train at step 3; the run stops here: "
        "resume from the last checkpoint with trainer.resume=auto"
    )
    assert isinstance(info.value.__cause__, Died)
    assert probed == [g.policy + g.value]  # every rank the call waited on was probed


@pytest.mark.parametrize("step", [1, 4])  # 1: no step trained yet in this process
def test_a_dead_rank_in_a_steps_forward_passes_names_that_step(step):
    g, _ = dying_group(("value", 0))
    g.step = step - 1
    pattern = rf"^value rank 0 \(pid 200\) died during forward passes at step {step};"
    with pytest.raises(LearnerDied, match=pattern):
        g.forward_passes(batch_of(4), None, 1.0, step)


def test_a_dead_rank_0_during_the_weight_export_is_named():
    g, _ = dying_group(("policy", 0))
    with pytest.raises(LearnerDied, match=r"^policy rank 0 \(pid 100\) died during weight export"):
        g.export_ref(16)


def test_a_failure_without_a_dead_rank_is_raised_as_it_is():
    g, probed = dying_group(None)
    with pytest.raises(Died, match="peer closed"):
        g.save(Path("/nowhere"))
    assert probed == [g.policy + g.value]
