"""Calibration: measure this machine so that ``lk.device("local")`` predicts it like any device, and
``labkit validate`` says how far to trust the predictions (lab 00).

calibrate.py runs the benchmarks (microbench.py: single ops; synthnet.py: random networks) through benchrun.py
and fits costfit.py's per-op-class model, kept per machine by cache.py; validate.py predicts and measures the zoo.
"""
