"""`python -m ccetl …` runs the binary."""

import os
import sys

from ccetl import find_ccetl_bin

if __name__ == "__main__":
    binary = find_ccetl_bin()
    os.execv(binary, [binary, *sys.argv[1:]])
