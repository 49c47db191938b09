"""Two full CPE steps on the tiny model through real Ray actors, vLLM engines (policy
and GRM) and 2 DeepSpeed policy ranks + 1 value rank, checking the step invariants."""

from __future__ import annotations

import ray
import torch
from transformers import AutoModelForCausalLM

from cpe.algo import edit_budget
from cpe.trainer.preflight import load_split
from cpe.trainer.system import build_driver
from cpe.types import SamplingSpec
from cpe.weight_sync.buckets import from_wire


def _weights(driver) -> dict[str, torch.Tensor]:
    return {
        name: t.clone()
        for wire in ray.get(driver.learners.export_ref())
        for name, t in from_wire(wire)
    }


def test_two_cpe_steps_keep_the_invariants(ray_session, tiny_config, tmp_path):
    cfg = tiny_config(tmp_path, "trainer.total_steps=2", "trainer.save_every=1")
    assert cfg.cluster.pools.policy.ranks == 2 and cfg.cluster.pools.value.ranks == 1
    driver, system = build_driver(cfg, load_split("bundled:train", None, None, None), 2, None)
    try:
        before = _weights(driver)
        for _ in range(2):
            exp, batch, metrics = driver.run_step()
            B, n = cfg.trainer.rollout_batch_prompts, cfg.rollout.n
            k = edit_budget(cfg.algorithm.edit_ratio, B, n, divisor=2)
            valid_edits = sum(e.valid for e in exp.edits)
            assert len(exp.originals) == B * n
            assert k > 0 and valid_edits >= k  # guided decoding: the tiny GRM's scores parse
            assert len(exp.selected) == k
            assert batch.input_ids.shape[0] == B * n + len(exp.selected)
            assert batch.is_edit.sum() == len(exp.selected)
            for row, sample in enumerate(exp.batch_samples):
                original = exp.originals[sample.pair_id]
                # edits train under the ORIGINAL prompt, linked to their original
                assert sample.prompt_ids == original.prompt_ids
                assert (
                    batch.input_ids[row, : len(sample.prompt_ids)].tolist() == original.prompt_ids
                )
                if sample.is_edit:
                    assert sample.edit_prompt_ids != sample.prompt_ids
            assert metrics["grm/invalid_rate"] < 0.5  # guided decoding keeps the tiny GRM parseable
            assert abs(metrics["sync/logprob_gap_max"]) < 1e-3
        after = _weights(driver)
        assert any(not torch.equal(before[k], after[k]) for k in before), (
            "policy weights did not change"
        )

        # After the sync the engine's greedy answer equals the learner's (saved HF folder).
        prompt = driver.maker.prompter.policy_ids(exp.originals[0].record)
        engine = driver.maker.rollout.generate(
            [prompt], SamplingSpec(n=1, temperature=0.0, max_tokens=12)
        )[0][0]
        model = AutoModelForCausalLM.from_pretrained(driver.checkpoints.latest() / "policy_hf")
        out = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)
        assert out[0, len(prompt) :].tolist()[: len(engine.token_ids)] == engine.token_ids
    finally:
        driver.logger.close()
        system.shutdown()
