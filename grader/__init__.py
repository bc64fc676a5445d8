"""Grader for the course's labs and any nbgrader assignment: nbgrader's configuration plus a
command that grades a class.

python -m grader release                      # regenerate labs/ and solutions/
python -m grader grade SUBMISSIONS --out OUT  # grade a class
"""
