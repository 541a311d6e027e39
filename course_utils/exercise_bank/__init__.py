"""References for the notebooks' exercises, one module per notebook (``nb05`` for notebook 05).

Each module registers its exercises with ``course_utils.exercises.exercise``. A reference computes the
expected value from the inputs the notebook's check passes, by a route independent of what the student
writes (a library function, a closed form, a loop instead of a matrix product). Modules are imported
only when a check runs (``course_utils.exercises.get_exercise``), so nothing in a notebook's namespace
holds an answer. Teachers: the worked solutions are in ``solutions/``, not here.
"""
