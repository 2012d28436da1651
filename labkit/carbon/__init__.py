"""``lk.carbon``: energy and carbon — yearly grid intensity and PUE, real 2020 grid series, an energy meter,
uncertainty ranges and carbon-aware scheduling of deferrable jobs (labs 01, 10 and 12).

    carbon_g = energy_j / 3.6e6 J/kWh  x  grid intensity (gCO2e/kWh)  x  PUE

Layering: a leaf below ``estimate``: it imports labkit.catalog, labkit.dtypes, labkit.args and labkit.targets,
never estimate, profile or plot. Placement across regions, which needs ``lk.estimate``, lives in
``labkit.carbon_placement`` (it imports this package, not the reverse).

Modules: ``intensity`` (yearly tables, PUE, carbon_g), ``series`` (2020 series and hour x month profiles),
``meter`` (RAPL or codecarbon's CPU-load estimate), ``uncertainty`` (seeded Monte Carlo ranges),
``schedule`` (shifting deferrable jobs in time) and ``workloads`` (the two scenarios of Wiesner et al. 2021).
"""

from labkit.carbon.intensity import J_PER_KWH, carbon_g, intensity, pue, regions
from labkit.carbon.meter import Energy, PowerReading, meter, power
from labkit.carbon.schedule import Job, Schedule, schedule
from labkit.carbon.series import GridProfile, profile, series, series_regions
from labkit.carbon.uncertainty import Range, carbon_range
from labkit.carbon.workloads import ml_jobs, nightly_jobs

__all__ = ["J_PER_KWH", "Energy", "GridProfile", "Job", "PowerReading", "Range", "Schedule", "carbon_g",
           "carbon_range", "intensity", "meter", "ml_jobs", "nightly_jobs", "power", "profile", "pue", "regions",
           "schedule", "series", "series_regions"]
