"""The run folder probe: what a node answers and which nodes an error names."""

from cpe.cluster.storage import PROBE_NAME, blind_nodes, one_slot_per_node, sees_probe


def test_a_node_sees_the_probe_only_with_the_drivers_token(tmp_path):
    (tmp_path / PROBE_NAME).write_text("abc123")
    assert sees_probe(str(tmp_path), "abc123")
    assert not sees_probe(str(tmp_path), "other")
    assert not sees_probe(str(tmp_path / "elsewhere"), "abc123")  # not mounted there


def test_each_node_is_probed_once_through_its_first_slot():
    layout = {"rollout": ["n1"], "grm": ["n1"], "policy": ["n2", "n2"], "value": ["n1"]}
    assert one_slot_per_node(layout) == {"n1": ("rollout", 0), "n2": ("policy", 0)}


def test_blind_nodes_are_the_ones_that_answered_no():
    answers = {"node a (rollout)": True, "node b (policy)": False}
    assert blind_nodes(answers) == ["node b (policy)"]
