# The sample app's tests import it as a top-level module (save_attachments.py next to them).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
