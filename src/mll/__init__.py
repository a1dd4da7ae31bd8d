"""mll: Model Label Learning."""

import os as _os

# Torch's OpenMP threads spin while they wait for work. On a machine whose cores are busy with
# other processes, that made two threads of EfficientNet-Lite0 eight times slower than one
# (4 against 33 images/s, measured); with passive waiting two threads stay ahead (34-44 images/s).
# The setting is read when torch loads its OpenMP runtime, so it has to be made before that.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
