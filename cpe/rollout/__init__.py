"""Rollout: vLLM policy engines (generate, edit, score tokens, load new weights).

``vllm_adapter`` holds every vLLM API call, ``settings`` what an engine starts with,
``engine`` the engine behind typed methods (wrapped with ``ray.remote`` by the system
wiring), ``pool`` several engines as one. The engine-side weight loaders live with the
rest of weight sync in ``cpe.weight_sync``. Importing this package imports neither vLLM
nor Ray.
"""
