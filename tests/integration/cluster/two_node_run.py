"""One tiny training on a fresh two-node Ray cluster (Ray's own ``cluster_utils``, both
nodes on this machine), the policy ranks pinned to the second node. Run as a script by
test_two_nodes.py: a process of its own, since the test session may hold a Ray already.

    python two_node_run.py RUN_DIR STEPS  ->  prints {"layout": ..., "nodes": ...} as JSON
"""

from __future__ import annotations

import json
import sys

from ray.cluster_utils import Cluster

from cpe.compose import load_config
from cpe.net import free_port
from cpe.train import run

# rollout and value on the head node, the two policy ranks on the second node.
HEAD = {"num_cpus": 2, "resources": {"cpe_pool_rollout": 1, "cpe_pool_value": 1}}
SECOND = {"num_cpus": 2, "resources": {"cpe_pool_policy": 2}}


def node_args(spec: dict) -> dict:
    # Each node's dashboard agent needs its own port (52365 is any other local Ray's).
    return {
        **spec,
        "dashboard_agent_listen_port": free_port(),
        "object_store_memory": 400 * 1024**2,
    }


def main(run_dir: str, steps: int) -> None:
    cluster = Cluster(initialize_head=True, head_node_args=node_args(HEAD))
    try:
        second = cluster.add_node(**node_args(SECOND))
        cluster.wait_for_nodes()
        cfg = load_config(
            [
                "experiment=tiny_cpu",
                "grm=python",
                "grm.python_function=cpe.reward.rules:letter_reward",
                "cluster.pools.grm.engines=0",
                f"cluster.address={cluster.address}",
                "cluster.pin_pools=true",
                f"trainer.total_steps={steps}",
                "trainer.save_every=1",
                "trainer.keep_checkpoints=5",
                f"logging.run_dir={run_dir}",
                "logging.wandb_mode=disabled",
                "logging.progress=false",
            ]
        )
        run(cfg)
        layout = json.loads(open(f"{run_dir}/placement.json").read())
        nodes = {"head": cluster.head_node.node_id, "second": second.node_id}
        print(json.dumps({"layout": layout, "nodes": nodes}))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
