"""Resolve ``model.*.path`` values: plain folders pass through, ``fixture:NAME``
builds (once per node) and returns a locally generated model folder.

Every process that loads a model resolves its path itself, on its own node: a fixture
is built in that node's cache (nothing assumes the driver's disk is everyone's), and a
folder must exist there (shared storage or baked into the image)."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock

from cpe.config import CPEConfig, ModelConfig, ModelSpec, ReferenceSpec

FIXTURES = ("tiny", "smollm2")


def check_model_path(path: str, key: str = "model path") -> None:
    """Cheap start-up check: a known fixture name or an existing local folder."""
    if path.startswith("fixture:"):
        name = path.split(":", 1)[1]
        if name not in FIXTURES:
            raise ValueError(
                f"{key}={path!r}: unknown model fixture {name!r}; known: {', '.join(FIXTURES)}"
            )
    elif not Path(path).is_dir():
        raise FileNotFoundError(
            f"{key}={path!r} is not a local model folder (no hub downloads happen at run time; "
            f"point it at a Hugging Face folder or use fixture:{'|'.join(FIXTURES)})"
        )


DEFAULT_CACHE = ModelConfig.cache_dir


def cache_dir_for_actors(cache_dir: str) -> str:
    """``model.cache_dir`` as every node reads it: ``~`` stays for each node's own home,
    a relative path is taken from the directory the run was started in."""
    if cache_dir.startswith("~") or Path(cache_dir).is_absolute():
        return cache_dir
    return str(Path(cache_dir).resolve())


def resolve_model_path(
    path: str, cache_dir: str | Path = DEFAULT_CACHE, key: str = "model path"
) -> str:
    check_model_path(path, key)
    if not path.startswith("fixture:"):
        return path
    name = path.split(":", 1)[1]
    cache = Path(cache_dir).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    # Several actors of one node (two learner ranks, an engine) may ask at once.
    with FileLock(str(cache / f"{name}.lock")):
        return _build_fixture(name, cache)


def _build_fixture(name: str, cache: Path) -> str:
    if name == "tiny":
        from cpe.models.tiny import build_tiny_model

        return str(build_tiny_model(cache / "tiny").resolve())
    if name == "smollm2":
        from cpe.models.smollm2 import build_smollm2

        return str(build_smollm2(cache / "smollm2-135m-instruct").resolve())
    raise AssertionError(f"fixture {name!r} is listed in FIXTURES but has no builder")


def model_roles(cfg: CPEConfig) -> dict[str, ModelSpec | ReferenceSpec]:
    """The models this config runs, by role: the policy always, the GRM when the GRM pool
    serves it (vllm engines, bt scorers; other backends bring their own), the value model
    when the advantage estimator reads values, a reference when one is set."""
    from cpe.algo import ADVANTAGE_ESTIMATORS
    from cpe.reward.pools import runs_grm_model

    roles = {"policy": cfg.model.policy}
    if runs_grm_model(cfg.grm.backend):
        roles["grm"] = cfg.model.grm
    estimator = ADVANTAGE_ESTIMATORS.get(cfg.algorithm.advantage)
    if estimator is None or estimator.needs_values:
        roles["value"] = cfg.model.value
    if cfg.model.reference.path is not None:
        roles["reference"] = cfg.model.reference
    return roles
