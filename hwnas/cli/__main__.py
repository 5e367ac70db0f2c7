"""``python -m hwnas.cli ARGS``: the ``hwnas`` command without its console script."""
import sys

from hwnas.cli import main

sys.exit(main())
