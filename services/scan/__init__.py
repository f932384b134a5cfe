"""`vigil scan`: standing queries over a recorded file, no broker (decode, sample, embed, match)."""

from vigil.services.scan.video import ScanResult, scan_video

__all__ = ["ScanResult", "scan_video"]
