"""`fastsd studio`: the whole job from a browser; every action runs the same CLI commands and runners."""
