"""Job families of an ATLAS-like day, with their PanDA labels and resource distributions.

Figures are chosen so that a day at ``scale=1.0`` gives about 1M jobs whose work (about 3.4e10
core-seconds before retries) roughly fills a ~400k-core grid for the day (reference/scale.md: ~1-2M
jobs/day on 250-500k cores); most jobs are user analysis, most of the CPU goes to production
simulation. docs/wms.md tabulates the families.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Category:
    """One family of tasks: production step or user analysis."""

    name: str
    prodsourcelabel: str
    processingtype: str
    transformation: str
    gshare: str
    job_share: float
    """Fraction of all jobs of the day in this family."""
    jobs_per_task_median: float
    jobs_per_task_sigma: float
    multicore_fraction: float
    """Fraction of tasks that run 8-core jobs (the rest run 1-core jobs)."""
    walltime_median_s: float
    """Median wall time of a job on a reference core (10 HS06) at full efficiency."""
    walltime_sigma: float
    """Lognormal sigma of the per-job work."""
    task_walltime_sigma: float
    """Lognormal sigma of the per-task median (tasks differ more than jobs within a task)."""
    cpu_eff_mean: float
    ramcount_mb: int
    """Requested memory per core (PanDA ramcount), MB."""
    rss_fraction: float
    """Median of actual maxrss over the request."""
    events_per_job: int
    input_files_per_job: float
    """Mean input files per job (0: no input, e.g. event generation)."""
    input_file_mb: float
    output_file_mb: float
    output_type: str
    input_type: str = ""
    daily_amplitude: float = 0.0
    """Relative amplitude of the daily arrival cycle (0 = flat)."""
    priority: int = 900
    io_intensity: float = 0.0
    """kB/s per core read by the payload (JEDI ioIntensity)."""
    workinggroups: tuple[str, ...] = field(default=())


CATEGORIES: tuple[Category, ...] = (
    Category(
        name="evgen", prodsourcelabel="managed", processingtype="evgen", transformation="Gen_tf.py",
        gshare="MC Event Generation", job_share=0.11, jobs_per_task_median=120, jobs_per_task_sigma=1.0,
        multicore_fraction=0.25, walltime_median_s=9500, walltime_sigma=0.35, task_walltime_sigma=0.6,
        cpu_eff_mean=0.93, ramcount_mb=2000, rss_fraction=0.45, events_per_job=2000,
        input_files_per_job=0, input_file_mb=0, output_file_mb=300, output_type="EVNT",
        priority=920, io_intensity=0.0, workinggroups=("AP_MCGN",),
    ),
    Category(
        name="simul", prodsourcelabel="managed", processingtype="simul", transformation="Sim_tf.py",
        gshare="MC Simulation Full", job_share=0.055, jobs_per_task_median=250, jobs_per_task_sigma=1.0,
        multicore_fraction=1.0, walltime_median_s=26400, walltime_sigma=0.30, task_walltime_sigma=0.4,
        cpu_eff_mean=0.90, ramcount_mb=1500, rss_fraction=0.55, events_per_job=200,
        input_files_per_job=1, input_file_mb=250, output_file_mb=900, output_type="HITS", input_type="EVNT",
        priority=900, io_intensity=10.0, workinggroups=("AP_MCGN", "AP_SUSY", "AP_HIGG"),
    ),
    Category(
        name="reco", prodsourcelabel="managed", processingtype="reco", transformation="Reco_tf.py",
        gshare="MC Reconstruction", job_share=0.03, jobs_per_task_median=400, jobs_per_task_sigma=1.1,
        multicore_fraction=1.0, walltime_median_s=15400, walltime_sigma=0.35, task_walltime_sigma=0.4,
        cpu_eff_mean=0.82, ramcount_mb=2000, rss_fraction=0.6, events_per_job=1000,
        input_files_per_job=2, input_file_mb=2500, output_file_mb=1500, output_type="AOD", input_type="HITS",
        priority=900, io_intensity=700.0, workinggroups=("AP_REPR", "AP_MCGN"),
    ),
    Category(
        name="merge", prodsourcelabel="managed", processingtype="merge", transformation="HITSMerge_tf.py",
        gshare="MC Merging", job_share=0.09, jobs_per_task_median=40, jobs_per_task_sigma=1.0,
        multicore_fraction=0.0, walltime_median_s=1150, walltime_sigma=0.5, task_walltime_sigma=0.4,
        cpu_eff_mean=0.65, ramcount_mb=2000, rss_fraction=0.5, events_per_job=10000,
        input_files_per_job=10, input_file_mb=400, output_file_mb=3500, output_type="HITS", input_type="HITS",
        priority=950, io_intensity=2000.0, workinggroups=("AP_MCGN",),
    ),
    Category(
        name="analysis", prodsourcelabel="user", processingtype="panda-client-1.5.80-jedi-run",
        transformation="runGen-00-00-02", gshare="User Analysis", job_share=0.715, jobs_per_task_median=25,
        jobs_per_task_sigma=1.4, multicore_fraction=0.08, walltime_median_s=2500, walltime_sigma=0.9,
        task_walltime_sigma=0.8, cpu_eff_mean=0.60, ramcount_mb=2000, rss_fraction=0.4,
        events_per_job=50000, input_files_per_job=4, input_file_mb=1800, output_file_mb=150,
        output_type="NTUP", input_type="DAOD", daily_amplitude=0.5, priority=1000, io_intensity=1500.0,
    ),
)
"""The built-in families; ``job_share`` sums to 1."""

CATEGORY_INDEX = {c.name: i for i, c in enumerate(CATEGORIES)}
