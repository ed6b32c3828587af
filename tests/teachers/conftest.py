import sys
from pathlib import Path

# the helpers next to the tests (solo_helpers, ...) import as plain modules
sys.path.insert(0, str(Path(__file__).parent))
