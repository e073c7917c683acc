"""How each command's work is cut into shards and merged back (one module per analysis).

Every module has a driver function ``sharded_<name>(sweep, params, ...) -> Result``, named in the
analysis' registration (`interp.analysis.registry`, which is how `interp.sweep.cli` finds it), that returns what
the serial ``run_<name>`` returns for the same params (the same JSON apart from wall-clock seconds, the
same CSV bytes), and the worker functions its shards run, ``f(model, payload, state)``. Shards are cut
so that each computation sees exactly the inputs (and batches) it sees in the serial run: that is what
makes the merged output identical rather than equal up to float noise.
"""

import math


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def shard_size(n: int, per_shard_max: int = 16, target_shards: int = 64) -> int:
    """Items per shard: about `target_shards` shards, at most `per_shard_max` items each. It depends on the
    amount of work only (not on the number of workers), so the shard cache survives a change of --workers."""
    return max(1, min(per_shard_max, math.ceil(n / target_shards)))
