"""Run pytest and leave with its exit status.

The Temporal SDK's runtime can crash while the interpreter shuts down after a green run; leaving
with os._exit once pytest has finished reports what pytest decided, nothing else.
"""

import os
import sys

import pytest

if __name__ == "__main__":
    status = int(pytest.main(sys.argv[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
