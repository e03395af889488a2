import os

# Sleeping, not spinning, OpenMP threads: pytest and the subprocesses it starts share the cores,
# where spinning threads stall each other (pipeline/__init__.py explains the stages' choice).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
