import sys

from rungroup.cli import main

sys.exit(main())
