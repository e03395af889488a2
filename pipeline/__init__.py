"""One small module per DVC stage: read params.yaml, call the packages, write outputs atomically."""

import os

# Before torch loads OpenMP (GNU libgomp in the PyPI wheels): how long an idle worker thread
# spins before it sleeps. libgomp's default spins for long: on 2 cores with two other busy
# processes a CycleGAN step took 2.06 s instead of 0.036 s. Never spinning (OMP_WAIT_POLICY=
# PASSIVE) costs ~45 % of the speed on an idle machine, as every op wakes threads through the
# kernel. A short spin keeps ~90 % of the idle speed and ~85 % of PASSIVE's under full load
# (demo CycleGAN stage, 2 cores: 3.9 vs 4.3 vs 2.4 it/s idle; 1.5 vs stalled vs 1.8 it/s busy).
# A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "2000")
