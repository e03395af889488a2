"""One small module per DVC stage: read params.yaml, call the packages, write outputs atomically."""

import os

# Before torch loads OpenMP: spinning worker threads make a CPU run 20-50x slower as soon as
# another process wants a core (measured: 2.06 s vs 0.036 s per CycleGAN step on 2 busy cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
