"""Getting a teacher: checkpoint formats, the zoo of named teachers, the frozen wrapper."""

from seed_solo.teachers.frozen import FrozenTeacher

__all__ = ["FrozenTeacher"]
