"""checkpoint-streams: checkpoint scans in, health-code changes out, in real time."""

__version__ = "0.1.0"
