"""Grader protocols, the local grader and scores: everything that judges
separations rather than produces them (that is :mod:`demix`)."""
