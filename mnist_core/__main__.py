"""Command line: python -m mnist_core {train,runs,evaluate,stop,continue,architectures}."""

import sys

from mnist_core.cli import main

sys.exit(main())
