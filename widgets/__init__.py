"""Jupyter panels for the workbench (ipywidgets). Depends on workbench, never the reverse.

The panels arrive with the Jupyter workbench issue; this package exists so the dependency
direction (notebooks -> widgets -> workbench) is fixed and tested from the start.
"""
