"""The session report: one self-contained HTML page with everything a session produced."""
