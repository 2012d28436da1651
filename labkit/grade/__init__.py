"""Grading, beside the simulator: ``lk.check`` (check.py), the notebook vocabulary (notebook.py),
``labkit build`` (build.py) and ``labkit grade`` (batch.py, restore.py, runner.py, gradebook.py, plugin.py).
"""
