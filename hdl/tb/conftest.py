# pytest configuration for the RTL benches: the cocotb test modules in this directory are
# imported by name inside the simulator, which inherits sys.path from pytest, so this
# directory must be on it whatever pytest's import mode is.
import sys
from pathlib import Path

_TB_DIR = str(Path(__file__).resolve().parent)
if _TB_DIR not in sys.path:
    sys.path.insert(0, _TB_DIR)
