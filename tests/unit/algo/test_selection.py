"""Edit selection strategies on small hand-built pools."""

import math

import pytest
import torch

from cpe.algo import edit_budget, select_edits
from cpe.algo.selection import per_group_quota

NAN = math.nan


def f(values):
    return torch.tensor(values, dtype=torch.float32)


def ids(values):
    return torch.tensor(values, dtype=torch.long)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# Pool A: n=2 rollouts, B=3 prompts, one edit per original (edit i belongs to original i).
# ratio 0.5, divisor 1: K = floor(0.5*3*2/1)*1 = 3 ; per-prompt quota = ceil(0.5*2) = 1
POOL_A = dict(
    reward_orig=f([1.0, 0.0, 2.0, 2.0, 0.5, NAN]),
    reward_edit=f([2.0, 2.0, 1.0, 1.5, NAN, 1.5]),
    pair_ids=ids([0, 1, 2, 3, 4, 5]),
    group_ids=ids([0, 0, 1, 1, 2, 2]),
    ratio=0.5,
    n=2,
    divisor=1,
)
# Δ = R_e - R_o = [1.0, 2.0, -1.0, -0.5, NaN (edit invalid), NaN (original invalid)]


def pick(strategy, pool, seed=0, **override):
    return select_edits(strategy, **{**pool, **override}, generator=gen(seed)).tolist()


def test_reward_rank_on_pool_a():
    # prompt 0: edits 0, 1 tie at 2.0 -> 0 (lower index) ; prompt 1: 3 (1.5 > 1.0)
    # prompt 2: edit 4 invalid -> 5 ; pool {0, 3, 5} fits K=3
    assert pick("reward_rank", POOL_A) == [0, 3, 5]


def test_conditional_versus_conditional_strict_on_pool_a():
    # conditional: prompt 0 -> 1 (Δ 2.0) ; prompt 1 -> 3 (Δ -0.5 beats -1.0) ; prompt 2: no Δ
    assert pick("conditional", POOL_A) == [1, 3]
    # strict drops Δ <= 0 first: only edits 0, 1 remain -> prompt 0 keeps 1; fewer than K
    assert pick("conditional_strict", POOL_A) == [1]


def test_random_never_picks_invalid_edits_and_is_seeded():
    first = pick("random", POOL_A, seed=123)
    assert len(first) == 3 and 4 not in first and first == sorted(first)
    assert pick("random", POOL_A, seed=123) == first
    draws = {tuple(pick("random", POOL_A, seed=s)) for s in range(20)}
    assert len(draws) > 1  # the generator is really used
    assert all(4 not in d and len(d) == 3 for d in draws)


def test_random_returns_all_valid_edits_when_k_exceeds_the_pool():
    # ratio 1: K = 6 > 5 valid edits
    assert pick("random", POOL_A, ratio=1.0) == [0, 1, 2, 3, 5]


# Pool B: n=4, B=2, divisor 3: K = floor(0.5*8/3)*3 = 3 ; quota = ceil(0.5*4) = 2
POOL_B = dict(
    reward_orig=f([0.0] * 8),
    reward_edit=f([0.5, 3.0, 1.0, 1.0, 1.0, 2.0, 0.0, -1.0]),
    pair_ids=ids(range(8)),
    group_ids=ids([0, 0, 0, 0, 1, 1, 1, 1]),
    ratio=0.5,
    n=4,
    divisor=3,
)


def test_conditional_global_top_k_breaks_ties_by_index():
    # per prompt top 2 by Δ (= R_e here): prompt 0 -> 1 (3.0), then 2 vs 3 tie at 1.0 -> 2
    #                                      prompt 1 -> 5 (2.0), 4 (1.0)
    # pool {1: 3.0, 2: 1.0, 4: 1.0, 5: 2.0} -> top 3: 1, 5, then 2 (ties 4, lower index)
    assert pick("conditional", POOL_B) == [1, 2, 5]


def test_reward_rank_subsamples_a_too_large_pool_at_random():
    # pool {1, 2, 4, 5} has 4 > K=3 -> a uniform random 3 of them, reproducible
    chosen = pick("reward_rank", POOL_B, seed=7)
    assert len(chosen) == 3 and set(chosen) <= {1, 2, 4, 5}
    assert pick("reward_rank", POOL_B, seed=7) == chosen
    assert {tuple(pick("reward_rank", POOL_B, seed=s)) for s in range(20)} != {tuple(chosen)}


def test_gain_uses_each_edits_own_original():
    # 4 originals (n=2, B=2) but only 3 edits: edit0 -> orig1, edit1 -> orig0, edit2 -> orig3
    pool = dict(
        reward_orig=f([0.0, 5.0, 1.0, 1.0]),
        reward_edit=f([2.0, 2.0, 2.0]),
        pair_ids=ids([1, 0, 3]),
        group_ids=ids([0, 0, 1]),
        ratio=0.5,
        n=2,
        divisor=1,
    )
    # Δ = [2-5, 2-0, 2-1] = [-3, 2, 1] ; K = 2, quota 1
    assert pick("conditional", pool) == [1, 2]
    assert pick("conditional_strict", pool) == [1, 2]
    # reward_rank ignores originals: prompt 0 tie at 2.0 -> edit 0
    assert pick("reward_rank", pool) == [0, 2]


def test_output_is_a_sorted_long_tensor_even_when_empty():
    out = select_edits("conditional", **{**POOL_A, "ratio": 0.0}, generator=gen())
    assert out.dtype == torch.long and out.shape == (0,)
    empty_pool = dict(
        reward_orig=f([1.0, 2.0]),
        reward_edit=f([]),
        pair_ids=ids([]),
        group_ids=ids([]),
        ratio=0.5,
        n=2,
        divisor=1,
    )
    for strategy in ("random", "reward_rank", "conditional", "conditional_strict"):
        assert select_edits(strategy, **empty_pool, generator=gen()).tolist() == []


def test_edit_budget():
    assert edit_budget(0.5, 128, 4, 8) == 256  # floor(256/8)*8
    assert edit_budget(0.5, 3, 2, 4) == 0  # floor(3/4)*4
    assert edit_budget(0.5, 5, 3, 2) == 6  # floor(7.5/2)*2 = 3*2
    assert edit_budget(0.29, 100, 1, 1) == 29  # 0.29*100 = 28.999999999999996 in floats
    assert per_group_quota(0.1, 30) == 3  # 0.1*30 = 3.0000000000000004 in floats


@pytest.mark.parametrize("ratio, divisor", [(-0.1, 1), (1.5, 1), (0.5, 0)])
def test_invalid_ratio_or_divisor(ratio, divisor):
    with pytest.raises(ValueError, match="ratio|divisor"):
        select_edits("random", **{**POOL_A, "ratio": ratio, "divisor": divisor}, generator=gen())


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="conditional, conditional_strict, random, reward_rank"):
        pick("best", POOL_A)


def test_originals_must_be_prompts_times_rollouts():
    with pytest.raises(ValueError, match="n=4"):
        pick("random", POOL_A, n=4)


def test_trim_to_multiple_drops_the_lowest_priority_then_the_higher_index():
    from cpe.algo import trim_to_multiple

    priority = [0.5, 0.1, 0.9, 0.1, 0.7]
    # 5 picks, divisor 2: drop 1 -> lowest priority 0.1 at 1 and 3; the higher index (3) goes
    assert trim_to_multiple([0, 1, 2, 3, 4], priority, 2) == [0, 1, 2, 4]
    # divisor 3: drop 2 -> 3 then 1
    assert trim_to_multiple([0, 1, 2, 3, 4], priority, 3) == [0, 2, 4]
    assert trim_to_multiple([0, 2], priority, 2) == [0, 2]


def test_strict_selection_is_rounded_down_to_the_divisor_by_gain():
    # n=2, B=3, divisor 2: K = floor(0.5*6/2)*2 = 2, quota 1. Δ = [1, -1, 0.5, 2, -3, 0.25]
    pool = dict(
        reward_orig=f([0.0] * 6),
        reward_edit=f([1.0, -1.0, 0.5, 2.0, -3.0, 0.25]),
        pair_ids=ids(range(6)),
        group_ids=ids([0, 0, 1, 1, 2, 2]),
        ratio=0.5,
        n=2,
        divisor=2,
    )
    # per prompt top-1 with Δ>0: 0 (1.0), 3 (2.0), 5 (0.25); global top K=2 -> {3, 0}
    assert pick("conditional_strict", pool) == [0, 3]
    pool["reward_edit"] = f([1.0, -1.0, -0.5, float("nan"), -3.0, -0.25])
    # only edit 0 has Δ>0: 1 pick, divisor 2 -> rounded down to 0
    assert pick("conditional_strict", pool) == []
