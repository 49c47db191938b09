import sys

from cpe.report.cli import main

sys.exit(main())
