"""Files: the library the APIs use (``library``), the workers' processing job (``ingest``) and the
janitor that removes what is no longer kept (``janitor``)."""
