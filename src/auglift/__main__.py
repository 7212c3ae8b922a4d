"""``python -m auglift`` is the ``auglift`` command."""

import sys

from auglift.cli import main

sys.exit(main())
