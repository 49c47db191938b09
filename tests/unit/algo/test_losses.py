"""PPO clip, hybrid on/off-policy loss and clipped value loss, by hand and by autograd."""

import math

import pytest
import torch

from cpe.algo import hybrid_policy_loss, ppo_clip_loss, value_loss

EPS = 1e-6  # the behaviour-probability epsilon of the edit term
LN = math.log


def t(rows, grad=False):
    return torch.tensor(rows, dtype=torch.float64, requires_grad=grad)


# ---------------------------------------------------------------- PPO clip


def _ppo_batch():
    # ratios r = exp(logp - old): row0 [1.5, 1.5, pad], row1 [0.5, 0.5, pad]
    old = t([[-1.0, -2.0, 0.0], [-0.5, -3.0, 0.0]])
    log_r = t([[LN(1.5), LN(1.5), 0.0], [LN(0.5), LN(0.5), 0.0]])
    logp = (old + log_r).detach().clone()
    logp[:, 2] = -math.inf  # garbage on padding must not leak
    adv = t([[1.0, -1.0, math.nan], [2.0, -2.0, math.nan]])
    mask = torch.tensor([[True, True, False], [True, True, False]])
    return logp.requires_grad_(), old, adv, mask


def test_ppo_clip_loss_by_hand():
    logp, old, adv, mask = _ppo_batch()
    loss, metrics = ppo_clip_loss(logp=logp, old_logp=old, advantages=adv, mask=mask)
    # per token max(-A r, -A clip(r, 0.8, 1.2)):
    #   A=+1, r=1.5: max(-1.5, -1.2) = -1.2   (clipped branch)
    #   A=-1, r=1.5: max( 1.5,  1.2) =  1.5
    #   A=+2, r=0.5: max(-1.0, -1.6) = -1.0
    #   A=-2, r=0.5: max( 1.0,  1.6) =  1.6   (clipped branch)
    # mean = (-1.2 + 1.5 - 1.0 + 1.6) / 4 = 0.225
    assert loss.item() == pytest.approx(0.225)
    assert metrics["clip_frac"] == pytest.approx(0.5)
    assert metrics["ratio_mean"] == pytest.approx((1.5 + 1.5 + 0.5 + 0.5) / 4)
    # approx_kl (k1) = mean(old - logp) = (-2 ln1.5 + 2 ln2) / 4 = 0.1438410
    assert metrics["approx_kl"] == pytest.approx((-2 * LN(1.5) + 2 * LN(2)) / 4)
    loss.backward()
    assert torch.isfinite(logp.grad).all()


def test_ppo_clip_loss_asymmetric_clip_high():
    logp, old, adv, mask = _ppo_batch()
    loss, _ = ppo_clip_loss(logp=logp, old_logp=old, advantages=adv, mask=mask, clip_high=0.28)
    # only the first token changes: max(-1.5, -1.28) = -1.28 -> (-1.28 + 1.5 - 1.0 + 1.6) / 4
    assert loss.item() == pytest.approx(0.82 / 4)


def test_ppo_gradient_in_and_out_of_the_clip_region():
    logp, old, adv, mask = _ppo_batch()
    # replace row 0 with ratios inside [0.8, 1.2]: 1.1 (A=2) and 0.9 (A=-1)
    with torch.no_grad():
        logp[0, 0] = old[0, 0] + LN(1.1)
        logp[0, 1] = old[0, 1] + LN(0.9)
    adv = adv.clone()
    adv[0, 0], adv[0, 1] = 2.0, -1.0
    loss, _ = ppo_clip_loss(logp=logp, old_logp=old, advantages=adv, mask=mask)
    loss.backward()
    n = 4
    # unclipped branch: d/dlogp (-A r)/N = -A r / N ; clipped branch: 0
    #   row0: r=1.1 A=2 and r=0.9 A=-1 lie inside [0.8, 1.2] -> -A r / N
    #   row1 t0: A=+2, r=0.5 picked the unclipped branch (-1.0 > -1.6) -> -A r / N
    #   row1 t1: A=-2, r=0.5 picked the clipped branch (1.6 > 1.0) -> 0
    expected = t([[-2.0 * 1.1 / n, 1.0 * 0.9 / n, 0.0], [-2.0 * 0.5 / n, 0.0, 0.0]])
    torch.testing.assert_close(logp.grad, expected)


# ---------------------------------------------------------------- hybrid


def test_edit_row_is_not_clipped_where_an_original_would_be():
    logp = t([[LN(0.3)]], grad=True)
    behaviour = t([[LN(0.2)]])
    adv, mask = t([[1.0]]), torch.ones(1, 1)
    as_edit, m = hybrid_policy_loss(
        logp=logp,
        old_logp=behaviour,
        behaviour_logp=behaviour,
        advantages=adv,
        mask=mask,
        is_edit=torch.tensor([True]),
    )
    as_orig, _ = hybrid_policy_loss(
        logp=logp,
        old_logp=behaviour,
        behaviour_logp=behaviour,
        advantages=adv,
        mask=mask,
        is_edit=torch.tensor([False]),
    )
    # edit: -A * 0.3 / (0.2 + 1e-6) = -1.4999925 ; original: ratio 1.5 clipped to 1.2 -> -1.2
    assert as_edit.item() == pytest.approx(-0.3 / (0.2 + EPS))
    assert as_orig.item() == pytest.approx(-1.2)
    assert m["edit/ratio_mean"] == pytest.approx(0.3 / (0.2 + EPS))


def _mixed_batch():
    nan = math.nan
    # row 0 original: ratios [1.5, 0.9], pad ; row 1 edit: pi [0.3, 0.5, 0.05], mu [0.2, 0.5, 0.1]
    # row 2 original: ratio [1.0], pad, pad
    old = t([[LN(0.4), LN(0.5), 0.0], [nan, nan, nan], [LN(0.7), 0.0, 0.0]])
    logp = t([[LN(0.6), LN(0.45), -math.inf], [LN(0.3), LN(0.5), LN(0.05)], [LN(0.7), 5.0, 5.0]])
    behaviour = t([[nan, nan, nan], [LN(0.2), LN(0.5), LN(0.1)], [nan, nan, nan]])
    adv = t([[1.0, -1.0, nan], [1.0, -2.0, 0.5], [0.5, nan, nan]])
    mask = t([[1, 1, 0], [1, 1, 1], [1, 0, 0]])
    return logp.requires_grad_(), old, behaviour, adv, mask, torch.tensor([False, True, False])


def test_hybrid_loss_is_one_token_mean_over_originals_and_edits():
    logp, old, behaviour, adv, mask, is_edit = _mixed_batch()
    loss, m = hybrid_policy_loss(
        logp=logp,
        old_logp=old,
        behaviour_logp=behaviour,
        advantages=adv,
        mask=mask,
        is_edit=is_edit,
    )
    # originals: row0 t0 A=1 r=1.5 -> -1.2 (clipped); t1 A=-1 r=0.9 -> 0.9; row2 A=0.5 r=1 -> -0.5
    # edits: -1*0.3/(0.2+1e-6) = -1.4999925 ; +2*0.5/(0.5+1e-6) = 1.999996 ;
    #        -0.5*0.05/(0.1+1e-6) = -0.2499975
    # N = 2 + 3 + 1 = 6 valid tokens; sum = -0.549994 -> mean = -0.0916657
    total = -1.2 + 0.9 - 0.5 - 0.3 / (0.2 + EPS) + 2 * 0.5 / (0.5 + EPS) - 0.5 * 0.05 / (0.1 + EPS)
    assert loss.item() == pytest.approx(total / 6)
    assert m["orig/ratio_mean"] == pytest.approx((1.5 + 0.9 + 1.0) / 3)
    assert m["orig/clip_frac"] == pytest.approx(1 / 3)
    assert m["orig/adv_abs_mean"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert m["edit/ratio_mean"] == pytest.approx(
        (0.3 / (0.2 + EPS) + 0.5 / (0.5 + EPS) + 0.05 / (0.1 + EPS)) / 3
    )
    assert m["edit/adv_abs_mean"] == pytest.approx((1 + 2 + 0.5) / 3)
    assert m["edit/capped_frac"] == 0.0
    assert (m["orig/num_tokens"], m["edit/num_tokens"]) == (3.0, 3.0)
    assert (m["orig/num_rows"], m["edit/num_rows"]) == (2.0, 1.0)


def test_hybrid_gradient_matches_the_closed_form():
    logp, old, behaviour, adv, mask, is_edit = _mixed_batch()
    loss, _ = hybrid_policy_loss(
        logp=logp,
        old_logp=old,
        behaviour_logp=behaviour,
        advantages=adv,
        mask=mask,
        is_edit=is_edit,
    )
    loss.backward()
    n = 6
    pi, mu, a = t([0.3, 0.5, 0.05]), t([0.2, 0.5, 0.1]), t([1.0, -2.0, 0.5])
    expected = torch.zeros(3, 3, dtype=torch.float64)
    expected[1] = -a * pi / (mu + EPS) / n  # edits: -A exp(logp)/(exp(mu)+1e-6) / N
    expected[0, 1] = 1.0 * 0.9 / n  # original, unclipped: -A r / N, A = -1
    expected[2, 0] = -0.5 * 1.0 / n
    # row0 t0 is in the clipped branch (gradient 0); padding gets 0
    torch.testing.assert_close(logp.grad, expected)


def test_hybrid_edit_ratio_cap_stops_gradient_on_capped_tokens():
    logp = t([[LN(0.6), LN(0.1)]], grad=True)
    behaviour = t([[LN(0.2), LN(0.2)]])
    adv = t([[1.0, 1.0]])
    loss, m = hybrid_policy_loss(
        logp=logp,
        old_logp=behaviour,
        behaviour_logp=behaviour,
        advantages=adv,
        mask=torch.ones(1, 2),
        is_edit=torch.tensor([True]),
        edit_ratio_cap=2.0,
    )
    # ratios 0.6/0.200001 = 2.99998 -> capped at 2 ; 0.1/0.200001 = 0.4999975 (free)
    assert loss.item() == pytest.approx((-2.0 - 0.1 / (0.2 + EPS)) / 2)
    assert m["edit/capped_frac"] == pytest.approx(0.5)
    loss.backward()
    torch.testing.assert_close(logp.grad, t([[0.0, -0.1 / (0.2 + EPS) / 2]]))


def test_hybrid_without_edits_equals_ppo():
    logp, old, adv, mask = _ppo_batch()
    hybrid, m = hybrid_policy_loss(
        logp=logp,
        old_logp=old,
        behaviour_logp=old,
        advantages=adv,
        mask=mask,
        is_edit=torch.tensor([False, False]),
    )
    ppo, _ = ppo_clip_loss(logp=logp, old_logp=old, advantages=adv, mask=mask)
    assert hybrid.item() == pytest.approx(ppo.item())
    assert m["edit/ratio_mean"] == m["edit/adv_abs_mean"] == m["edit/num_tokens"] == 0.0
    assert all(math.isfinite(v) for v in m.values())


def test_hybrid_without_originals_and_with_no_valid_tokens():
    logp, old, behaviour, adv, mask, _ = _mixed_batch()
    everything_edit = torch.tensor([True, True, True])
    _, m = hybrid_policy_loss(
        logp=logp,
        old_logp=old,
        behaviour_logp=logp.detach(),
        advantages=adv,
        mask=mask,
        is_edit=everything_edit,
    )
    assert m["orig/ratio_mean"] == m["orig/clip_frac"] == m["orig/num_rows"] == 0.0
    assert all(math.isfinite(v) for v in m.values())
    empty, m = hybrid_policy_loss(
        logp=logp,
        old_logp=old,
        behaviour_logp=behaviour,
        advantages=adv,
        mask=torch.zeros(3, 3),
        is_edit=everything_edit,
    )
    assert empty.item() == 0.0 and all(math.isfinite(v) for v in m.values())


def test_hybrid_rejects_a_token_level_is_edit():
    logp, old, behaviour, adv, mask, _ = _mixed_batch()
    with pytest.raises(ValueError, match="is_edit"):
        hybrid_policy_loss(
            logp=logp,
            old_logp=old,
            behaviour_logp=behaviour,
            advantages=adv,
            mask=mask,
            is_edit=torch.ones(3, 3, dtype=torch.bool),
        )


# ---------------------------------------------------------------- value loss


def _value_batch():
    values = t([[1.0, 1.0, 0.2, 50.0]], grad=True)
    old = t([[0.0, 0.0, 0.0, 0.0]])
    returns = t([[2.0, 0.0, 1.0, 0.0]])
    return values, old, returns, t([[1, 1, 1, 0]])


def test_value_loss_takes_the_clipped_branch_when_larger():
    values, old, returns, mask = _value_batch()
    loss, m = value_loss(values=values, old_values=old, returns=returns, mask=mask, clip=0.5)
    # t0: V=1 G=2: (1-2)^2 = 1 ; clip(V, -0.5, 0.5) = 0.5 -> (0.5-2)^2 = 2.25 -> 2.25 (clipped)
    # t1: V=1 G=0: 1 ; (0.5-0)^2 = 0.25 -> 1
    # t2: V=0.2 G=1: inside the clip range -> 0.64
    # loss = 0.5 * (2.25 + 1 + 0.64) / 3 = 0.6483333
    assert loss.item() == pytest.approx(0.5 * 3.89 / 3)
    assert m["vf_clip_frac"] == pytest.approx(1 / 3)
    assert m["value_mean"] == pytest.approx((1 + 1 + 0.2) / 3)
    loss.backward()
    # d/dV: clipped token 0 (clip saturated); else 0.5 * 2 (V - G) / 3 = (V - G) / 3
    torch.testing.assert_close(values.grad, t([[0.0, 1 / 3, -0.8 / 3, 0.0]]))


def test_value_loss_without_clipping():
    values, old, returns, mask = _value_batch()
    loss, m = value_loss(values=values, old_values=old, returns=returns, mask=mask, clip=None)
    # 0.5 * (1 + 1 + 0.64) / 3 = 0.44
    assert loss.item() == pytest.approx(0.44)
    assert m["vf_clip_frac"] == 0.0


def test_ppo_policy_loss_equals_the_clip_loss_and_refuses_edited_rows():
    from cpe.algo import ppo_policy_loss

    logp = torch.tensor([[-1.0, -0.5]])
    old = torch.tensor([[-1.0, -1.0]])
    adv = torch.tensor([[1.0, 1.0]])
    mask = torch.ones(1, 2)
    # ratios 1 and e^0.5 = 1.65 -> clipped to 1.2 (A > 0): loss = -(1 + 1.2) / 2 = -1.1
    loss, _ = ppo_policy_loss(logp, old, old, adv, mask, torch.tensor([False]))
    assert loss.item() == pytest.approx(-1.1)
    with pytest.raises(ValueError, match="policy_loss=ppo"):
        ppo_policy_loss(logp, old, old, adv, mask, torch.tensor([True]))
