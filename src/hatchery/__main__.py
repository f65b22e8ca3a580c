import sys

from hatchery.cli.main import main

sys.exit(main())
