"""A torch_npu on a broken driver: importing it aborts the whole process, as a bad driver can."""

import os

os.abort()
