"""The ingest service: cameras (RTSP or files) -> sampled JPEG frames on Kafka "frames"."""
