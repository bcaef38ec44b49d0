"""The scout baseline PanDA uses today: a task's first N finished jobs measure its needs, and the rest of
the task is requested from them (median for the estimate, the largest scout for a safe request).

"First" is in creation order (``pandaid``): PanDA's scouts are the first jobs of a task, run before the
rest is released. Ordering by end time instead would pick the task's shortest jobs and make the baseline
look worse than it is."""

from __future__ import annotations

import numpy as np


def scout_baseline(y: np.ndarray, groups: np.ndarray, order_key: np.ndarray, n_scouts: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For jobs with a known ``y``, ordered within their task by ``order_key`` (pandaid): a mask of the jobs
    the baseline can predict (not scouts, in a task with more than ``n_scouts`` jobs), their median and
    upper predictions (the scouts' median and maximum), and each job's scout count position (0-based)."""
    n = len(y)
    order = np.lexsort((np.arange(n), order_key, groups))
    g_sorted = groups[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    sizes = np.diff(np.r_[starts, n])
    pos_sorted = np.arange(n) - np.repeat(starts, sizes)
    pos = np.empty(n, dtype=np.int64)
    pos[order] = pos_sorted
    size_of = np.empty(n, dtype=np.int64)
    size_of[order] = np.repeat(sizes, sizes)
    usable = (pos >= n_scouts) & (size_of > n_scouts)
    med = np.full(n, np.nan)
    up = np.full(n, np.nan)
    y_sorted = y[order]
    for s, k in zip(starts.tolist(), sizes.tolist(), strict=True):
        if k <= n_scouts:
            continue
        scouts = y_sorted[s:s + n_scouts]
        rows = order[s + n_scouts:s + k]
        med[rows] = np.median(scouts)
        up[rows] = scouts.max()
    return usable, med, up, pos
