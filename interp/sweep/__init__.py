"""Sweeps on Ray: work cut into shards, one model per worker, merged in a fixed order.

The analyses registered with a sharded driver (`interp.analysis.registry`: `interp edit-eval`, `trace --facts`,
`neurons --facts`, `lost-in-middle`), `run` and `report` take ``--workers N`` (a local Ray runtime with N
worker processes) or ``--ray-address ADDRESS`` (an existing cluster; ``RAY_ADDRESS`` too). Without either,
nothing here is imported and Ray never is.

- `runtime`: starting or joining Ray (the settings that keep it reliable on a small, loaded machine);
- `worker`: the Ray actor, which loads the model once, runs shards and puts the weights back after each;
- `engine`: `Sweep`, which hands shards to the actors, retries a shard whose worker died on another one,
  caches every finished shard on disk (a rerun redoes only the missing ones) and keeps one progress bar;
- `cache`: the on-disk shard cache;
- `tasks`: for each command, how its work is cut into shards, what a worker runs, and how the shards'
  outputs merge into exactly the result the serial run returns;
- `cli`: what the commands call.
"""
