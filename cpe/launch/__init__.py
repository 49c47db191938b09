"""Running cpe beyond one local process: Hydra sweeps (``sweep``), Ray job submission and
Kubernetes manifests."""
