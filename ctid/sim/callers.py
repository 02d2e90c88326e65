"""Who calls: numbers and names as a real call center sees them.

Most callers present a number and a name; mobiles often come without a name;
some withhold their number (`anonymous`); a few names are not ASCII. The draws
come from the call center's own `random.Random`, so a seed fixes them.
"""

from __future__ import annotations

import random

FIRST = ("Harper", "Logan", "Maya", "Olivia", "Ethan", "Ava", "Mason", "Lucas", "Zoe", "Nia", "Omar",
         "Ivan", "Lea", "Gus", "Hana", "Kofi", "Pia", "Ben", "Cleo", "Dan", "Fay", "Eli", "Jill", "Max")
LAST = ("Quinn", "Reyes", "Patel", "Grant", "Cole", "Brooks", "Hill", "Price", "Turner", "Lima", "Haddad",
        "Petrov", "Roux", "Hale", "Ito", "Mensah", "Lund", "Ode", "Park", "Ruiz", "Wu", "Stone", "Moss", "Berg")
#: Names that are not ASCII (accented Latin, Greek, Han, Vietnamese): they must survive the wire as UTF-8.
UTF8_NAMES = ("José Núñez", "Zoë Müller", "张伟", "李娜", "Łukasz Wróbel", "Søren Kjær", "Ana Lucía Pérez",
              "Ömer Yılmaz", "Nguyễn Văn An", "Ελένη Παππά", "Chloé Gauthier", "王芳")

MOBILE_NAMES = tuple(f"{first} {last}" for first, last in zip(FIRST[:4], LAST[:4]))


class CallerPool:
    """Draws (number, name) pairs; `name` is "" when the caller presents none."""

    def __init__(self, rng: random.Random, withheld: float = 0.08) -> None:
        self.rng = rng
        self.withheld = withheld

    def draw(self) -> tuple[str, str]:
        r = self.rng.random()
        if r < self.withheld:
            return "anonymous", ""
        kind = self.rng.random()
        if kind < 0.5:  # a US landline with a name, now and then a non-ASCII one
            number = f"+1202555{self.rng.randrange(100, 10000):04d}"
            if self.rng.random() < 0.12:
                return number, self.rng.choice(UTF8_NAMES)
            return number, f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
        if kind < 0.85:  # a mobile, mostly without a name
            number = f"+8613800138{self.rng.randrange(0, 1000):03d}"
            if self.rng.random() < 0.2:
                return number, self.rng.choice(UTF8_NAMES + MOBILE_NAMES)
            return number, ""
        number = f"+4420794{self.rng.randrange(0, 100000):05d}"  # a UK number, name from the directory
        return number, f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
