import sys

from qste.cli import main

sys.exit(main())
