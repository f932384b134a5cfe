"""`python -m vigil.evaluation`: the same as `vigil eval`."""

import sys

from vigil.evaluation.evaluate import main

sys.exit(main())
