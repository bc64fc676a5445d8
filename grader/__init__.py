"""Grader for the cats-vs-dogs lab: nbgrader configuration plus a class-grading command.

python -m grader release                      # regenerate labs/ and solutions/
python -m grader grade SUBMISSIONS --out OUT  # grade a class
"""
