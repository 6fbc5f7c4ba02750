"""course_utils: the helper package of the course "LLM architectures, built and compared".

Later labs import what earlier labs built from here: data and tokenizers (lab 01), the layers
all three architectures share (labs 02-03), one training loop, plots, and the checks that
exercise tests use. Importing this package is cheap: heavy modules load on first use.
"""

from .profiles import current_profile, pick_device, seed_everything, settings

__version__ = "0.1.0"
__all__ = ["current_profile", "pick_device", "seed_everything", "settings", "__version__"]
