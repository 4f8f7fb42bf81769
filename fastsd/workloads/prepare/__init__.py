"""`fastsd prepare`: import photos into a session (orient, convert, subject-aware square crop)."""
