"""What arrives: tasks, their jobs and the datasets they read."""

from gridtwin.workload.categories import CATEGORIES, Category
from gridtwin.workload.generator import WorkloadParams, generate_workload
from gridtwin.workload.spec import Datasets, Workload

__all__ = ["CATEGORIES", "Category", "Datasets", "Workload", "WorkloadParams", "generate_workload"]
