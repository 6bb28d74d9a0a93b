"""checkpoint-streams: checkpoint scans in, health-code changes out, in real time."""

__version__ = "0.2.0"
