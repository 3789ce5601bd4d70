"""The team service: `lastgood server` serves the REST API (`api/`), the dashboard (`web/`) and runs the
background work (`jobs.py`), every call through the service layer with the authenticated identity."""
