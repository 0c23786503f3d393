"""The two front doors of the ingest: an SQS-triggered Lambda and a long-poll poller."""
