"""A torch_npu installed without CANN: importing it fails the way the real one does."""

raise ImportError("libhccl.so: cannot open shared object file: No such file or directory")
