"""``lk.carbon``: energy and carbon — yearly grid intensity and PUE, real 2020 grid series, an energy meter,
uncertainty ranges and carbon-aware scheduling of deferrable jobs (labs 01, 10 and 12).

    carbon_g = energy_j / 3.6e6 J/kWh  x  grid intensity (gCO2e/kWh)  x  PUE


Modules: ``yearly`` (yearly tables, PUE, carbon_g), ``timeseries`` (2020 series, hour x month profiles),
``power_meter`` (RAPL or codecarbon's CPU-load estimate), ``uncertainty`` (seeded Monte Carlo ranges),
``scheduler`` (shifting deferrable jobs in time) and ``workloads`` (the two scenarios of Wiesner et al. 2021).
The module names differ from the functions they hold (``series``, ``schedule``, ``meter``, ``intensity``) on
purpose: a submodule named like a function re-exported here would be shadowed by it.
"""

from labkit.args import namespace
from labkit.carbon.power_meter import Energy, PowerReading, meter, power
from labkit.carbon.scheduler import Job, Schedule, schedule
from labkit.carbon.timeseries import GridProfile, profile, series, series_regions
from labkit.carbon.uncertainty import Range, carbon_range, estimate_range
from labkit.carbon.workloads import ml_jobs, nightly_jobs
from labkit.carbon.yearly import J_PER_KWH, carbon_g, intensity, pue, regions

__all__ = ["J_PER_KWH", "Energy", "GridProfile", "Job", "PowerReading", "Range", "Schedule", "carbon_g",
           "carbon_range", "estimate_range", "intensity", "meter", "ml_jobs", "nightly_jobs", "power", "profile", "pue", "regions",
           "schedule", "series", "series_regions"]

__getattr__, __dir__ = namespace("lk.carbon", __all__)
