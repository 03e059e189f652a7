"""督办看板: the supervisors' web pages, rendered on the server from the same service calls and
scoping as the JSON API."""
