"""Captures out to the formats other tools read: pprof's ``profile.proto``."""
