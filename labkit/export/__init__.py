"""Captures out to the formats other tools read: pprof's ``profile.proto``, Parquet."""

# memray's passes each export makes (MemrayCapture's ``*_in_background`` flags), here so that
# the command can start them before it imports the exports themselves
DEFAULT_FORMAT = "pprof"  # ``labkit export``'s --to when not given
MEMRAY_PASSES: dict[str, dict[str, bool]] = {
    "pprof": {"held_in_background": False, "stats_in_background": True},
    "parquet": {"churn_in_background": True},  # with the held pass
}
