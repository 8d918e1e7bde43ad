"""The systematic demo preference pairs: arithmetic and unit conversions in English and Arabic.

Each template turns a deterministic random stream (:class:`Lcg`) into (prompt, chosen, rejected),
with the answer computed here rather than typed; ``PLAN`` says how many pairs of each to make.
make_preferences.py writes them after the hand-written pairs.
"""

from __future__ import annotations

from collections.abc import Callable

# A template turns a random stream into (prompt, chosen, rejected).
Template = Callable[["Lcg"], tuple[str, str, str]]


class Lcg:
    """Tiny linear congruential generator (glibc constants), fully deterministic."""

    def __init__(self, seed: int) -> None:
        self.state = seed % 2**31

    def below(self, n: int) -> int:
        """Return an integer in ``[0, n)``."""
        self.state = (self.state * 1103515245 + 12345) % 2**31
        return (self.state >> 16) % n

    def between(self, lo: int, hi: int) -> int:
        """Return an integer in ``[lo, hi]``."""
        return lo + self.below(hi - lo + 1)


def pick(r: Lcg, first: str, second: str) -> str:
    """Choose one of two texts (used to vary the kind of defect)."""
    return first if r.below(2) else second


def num(x: float, places: int = 2) -> str:
    """Format a number with at most ``places`` decimals and no trailing zeros."""
    text = f"{x:.{places}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


# --- English arithmetic -----------------------------------------------------


def en_add(r: Lcg) -> tuple[str, str, str]:
    a, b = r.between(23, 489), r.between(17, 398)
    s = a + b
    wrong = pick(r, str(s - 10), str(s + 10))
    return f"What is {a} + {b}?", f"{a} + {b} = {s}.", f"{a} + {b} = {wrong}."


def en_sub(r: Lcg) -> tuple[str, str, str]:
    a = r.between(120, 900)
    b = r.between(11, a - 20)
    return (
        f"What is {a} minus {b}?",
        f"{a} - {b} = {a - b}.",
        f"{a} - {b} = {a + b}.",
    )


def en_mul(r: Lcg) -> tuple[str, str, str]:
    a, b = r.between(6, 29), r.between(4, 19)
    rejected = pick(
        r,
        "I'm not able to do multiplication. Please use a calculator.",
        f"{a} × {b} = {a * b - a}.",
    )
    return f"Calculate {a} × {b}.", f"{a} × {b} = {a * b}.", rejected


def en_div(r: Lcg) -> tuple[str, str, str]:
    d, q = r.between(3, 15), r.between(6, 40)
    n = d * q
    return (
        f"What is {n} divided by {d}?",
        f"{n} ÷ {d} = {q}, because {d} × {q} = {n}.",
        f"{n} ÷ {d} = {q + 1}.",
    )


def en_percent(r: Lcg) -> tuple[str, str, str]:
    p = (5, 10, 15, 20, 25, 30, 40, 50, 60, 75)[r.below(10)]
    x = 20 * r.between(2, 30)
    result = p * x // 100
    rejected = pick(
        r,
        "Percentages are basic stuff. Work it out yourself.",
        f"{p}% of {x} is {x - p}.",
    )
    return (
        f"What is {p}% of {x}?",
        f"{p}% of {x} is {result}, since {p}/100 × {x} = {result}.",
        rejected,
    )


def en_pencils(r: Lcg) -> tuple[str, str, str]:
    a = r.between(25, 90)
    b = r.between(3, a - 5)
    c = a - b
    return (
        f"A box holds {a} pencils and {b} are taken out. How many are left?",
        f"{a} - {b} = {c}, so {c} pencils are left.",
        f"{a + b} pencils are left.",
    )


# --- English unit conversion ------------------------------------------------


def en_km_to_miles(r: Lcg) -> tuple[str, str, str]:
    k = r.between(2, 120)
    return (
        f"How many miles is {k} km?",
        f"About {num(k * 0.621371)} miles, since 1 km ≈ 0.621 miles.",
        f"About {num(k * 1.609344)} miles.",
    )


def en_miles_to_km(r: Lcg) -> tuple[str, str, str]:
    m = r.between(2, 80)
    return (
        f"Convert {m} miles to kilometres.",
        f"{m} miles ≈ {num(m * 1.609344)} km, since 1 mile = 1.609344 km.",
        f"{m} miles ≈ {num(m * 0.621371)} km.",
    )


def en_kg_to_lb(r: Lcg) -> tuple[str, str, str]:
    k = r.between(2, 95)
    rejected = pick(
        r,
        "Pounds and kilograms are the same, so it's the same number.",
        f"About {num(k / 2.20462, 1)} lb.",
    )
    return (
        f"How many pounds is {k} kg?",
        f"About {num(k * 2.20462, 1)} lb, since 1 kg ≈ 2.205 lb.",
        rejected,
    )


def en_c_to_f(r: Lcg) -> tuple[str, str, str]:
    c = r.between(-20, 45)
    return (
        f"Convert {c} °C to Fahrenheit.",
        f"{c} °C = {num(c * 9 / 5 + 32, 1)} °F, using F = C × 9/5 + 32.",
        f"{c} °C = {num(c * 9 / 5, 1)} °F.",
    )


def en_inches_to_cm(r: Lcg) -> tuple[str, str, str]:
    i = r.between(2, 72)
    return (
        f"How many centimetres are in {i} inches?",
        f"{i} inches = {num(i * 2.54)} cm, since 1 inch is exactly 2.54 cm.",
        f"{i} inches = {i * 2} cm.",
    )


# --- Arabic arithmetic --------------------------------------------------------
# Counted nouns follow the numbers only where the number is kept in 11-99, so
# the singular accusative form (tamyiz) is always grammatical.


def ar_add(r: Lcg) -> tuple[str, str, str]:
    a, b = r.between(23, 489), r.between(17, 398)
    s = a + b
    rejected = pick(r, "احسبها بنفسك، فالسؤال سهل جدًا.", f"ناتج {a} + {b} هو {s - 10}.")
    return f"ما ناتج {a} + {b}؟", f"ناتج {a} + {b} هو {s}.", rejected


def ar_sub(r: Lcg) -> tuple[str, str, str]:
    a = r.between(120, 900)
    b = r.between(11, a - 20)
    return (
        f"ما ناتج طرح {b} من {a}؟",
        f"ناتج طرح {b} من {a} هو {a - b}.",
        f"ناتج طرح {b} من {a} هو {a + b}.",
    )


def ar_mul(r: Lcg) -> tuple[str, str, str]:
    a, b = r.between(6, 29), r.between(4, 19)
    return (
        f"ما حاصل ضرب {a} في {b}؟",
        f"حاصل ضرب {a} في {b} يساوي {a * b}.",
        pick(r, "لا أستطيع إجراء عمليات الضرب، استخدم الآلة الحاسبة.", f"حاصل ضرب {a} في {b} يساوي {a + b}."),
    )


def ar_div(r: Lcg) -> tuple[str, str, str]:
    d, q = r.between(3, 15), r.between(6, 40)
    n = d * q
    return (
        f"ما ناتج قسمة {n} على {d}؟",
        f"ناتج قسمة {n} على {d} هو {q}، لأن {d} × {q} = {n}.",
        f"ناتج قسمة {n} على {d} هو {q + 1}.",
    )


def ar_pencils(r: Lcg) -> tuple[str, str, str]:
    a = r.between(40, 70)
    b = r.between(11, min(a - 11, 99 - a))
    c = a - b
    return (
        f"في علبة {a} قلمًا، أُخذ منها {b}. كم قلمًا بقي؟",
        f"بقي {c} قلمًا، لأن {a} - {b} = {c}.",
        f"بقي {a + b} قلمًا.",
    )


# --- Arabic unit conversion ---------------------------------------------------


def ar_km_to_miles(r: Lcg) -> tuple[str, str, str]:
    k = r.between(11, 99)
    return (
        f"حوّل {k} كيلومترًا إلى أميال.",
        f"المسافة بالميل نحو {num(k * 0.621371)}، لأن الكيلومتر يساوي نحو 0.621 ميل.",
        f"المسافة بالميل نحو {num(k * 1.609344)}.",
    )


def ar_c_to_f(r: Lcg) -> tuple[str, str, str]:
    c = r.between(11, 45)
    return (
        f"حوّل {c} درجة مئوية إلى فهرنهايت.",
        f"درجة الحرارة بالفهرنهايت {num(c * 9 / 5 + 32, 1)}، وفق القاعدة: ف = م × 9/5 + 32.",
        f"درجة الحرارة بالفهرنهايت {num(c * 9 / 5, 1)}.",
    )


def ar_kg_to_lb(r: Lcg) -> tuple[str, str, str]:
    k = r.between(11, 99)
    return (
        f"كم رطلًا في {k} كيلوغرامًا؟",
        f"الوزن بالرطل نحو {num(k * 2.20462, 1)}، لأن الكيلوغرام يساوي نحو 2.205 رطل.",
        f"الوزن بالرطل نحو {num(k / 2.20462, 1)}.",
    )


# (language, topic, template, how many pairs)
PLAN: tuple[tuple[str, str, Template, int], ...] = (
    ("en", "arithmetic", en_add, 4),
    ("en", "arithmetic", en_sub, 4),
    ("en", "arithmetic", en_mul, 4),
    ("en", "arithmetic", en_div, 4),
    ("en", "arithmetic", en_percent, 4),
    ("en", "arithmetic", en_pencils, 4),
    ("en", "units", en_km_to_miles, 4),
    ("en", "units", en_miles_to_km, 4),
    ("en", "units", en_kg_to_lb, 4),
    ("en", "units", en_c_to_f, 4),
    ("en", "units", en_inches_to_cm, 4),
    ("ar", "arithmetic", ar_add, 2),
    ("ar", "arithmetic", ar_sub, 2),
    ("ar", "arithmetic", ar_mul, 2),
    ("ar", "arithmetic", ar_div, 2),
    ("ar", "arithmetic", ar_pencils, 2),
    ("ar", "units", ar_km_to_miles, 2),
    ("ar", "units", ar_c_to_f, 2),
    ("ar", "units", ar_kg_to_lb, 2),
)
