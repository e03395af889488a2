import os

# as in pipeline/__init__.py: sleeping, not spinning, OpenMP threads on a shared CPU
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
