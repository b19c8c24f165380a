"""Rep trajectories: clean GPS fixes, detect stops, score visit evidence, simplify, import GPX.

Pure Python + numpy/shapely; coordinates are WGS-84 everywhere in here. Conversion to
GCJ-02 happens only when drawing on a tile source that needs it (:mod:`core.trajectory.coords`).
"""
