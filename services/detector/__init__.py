"""The detector service: frames in, standing queries scored, hits out (Kafka and Milvus)."""
