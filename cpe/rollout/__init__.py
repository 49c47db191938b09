"""Rollout: vLLM policy engines (generate, edit, score tokens, load new weights).

``vllm_adapter`` holds the vLLM API calls, ``weight_update`` the CPU in-place weight
loader (a vLLM worker extension), ``nccl_sync`` the GPU weight transfer,
``engine_actor`` the engine behind typed methods, ``pool`` several engines as one.
Importing this package imports neither vLLM nor Ray.
"""
