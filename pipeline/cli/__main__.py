"""`python -m pipeline.cli ...` is `golden ...`."""

import sys

from pipeline.cli import main

sys.exit(main())
