"""Getting a teacher: checkpoint formats, the zoo of named teachers, the frozen wrapper.

``load_teacher(source, format="auto", ...)`` is the one entry point the method uses.
"""

from seed_solo.teachers.frozen import FrozenTeacher
from seed_solo.teachers.loader import build_teacher, load_teacher

__all__ = ["FrozenTeacher", "build_teacher", "load_teacher"]
