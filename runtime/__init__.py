"""Process plumbing shared by the API, the worker and the CLI: connections, logging, servers."""
