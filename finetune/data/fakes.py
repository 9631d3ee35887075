"""Seeded fake personal data, per locale, for synthetic transcripts and the redaction test set.

Every value is invented but *valid in form*: card numbers pass the Luhn check, IBANs carry correct
mod-97 check digits, phone numbers follow each country's format. That makes the planted PII a fair
test of the redactor, which must recognise real-world formats, not our own quirks.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

FIRST = {
    "en": ["Emma", "Liam", "Olivia", "Noah", "Ava", "James", "Sophia", "Lucas", "Mia", "Ethan"],
    "es": ["Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Daniel", "Valeria", "Pablo", "Elena"],
    "pt": ["Ana", "João", "Beatriz", "Pedro", "Mariana", "Gabriel", "Larissa", "Rafael", "Júlia"],
    "fr": ["Camille", "Louis", "Chloé", "Jules", "Léa", "Hugo", "Manon", "Arthur", "Inès"],
    "de": ["Lena", "Jonas", "Hannah", "Felix", "Marie", "Lukas", "Sophie", "Paul", "Emilia"],
}
LAST = {
    "en": ["Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Clarke", "Walker"],
    "es": ["García", "Martínez", "López", "Sánchez", "Romero", "Navarro", "Torres", "Ruiz"],
    "pt": ["Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Almeida", "Ferreira"],
    "fr": ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Roux"],
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Wagner", "Hoffmann"],
}
AGENTS = ["Sam", "Alex", "Robin", "Kim", "Noa", "Charlie", "Jordan", "Maxime"]
STREETS = {
    "en": ("{n} {s} Street, {city} {zip}", ["Baker", "Elm", "Maple", "Church"],
           ["London", "Leeds", "Bristol"], lambda r: f"{r.choice('EMNW')}{r.randint(1, 20)} {r.randint(1, 9)}{r.choice('ABDEFG')}{r.choice('HJLNPQ')}"),
    "es": ("Calle {s} {n}, {zip} {city}", ["Mayor", "Alcalá", "Serrano", "del Sol"],
           ["Madrid", "Sevilla", "Valencia"], lambda r: f"{r.randint(10000, 52999)}"),
    "pt": ("Rua {s}, {n}, {city} - {zip}", ["das Flores", "Augusta", "XV de Novembro"],
           ["São Paulo", "Curitiba", "Recife"], lambda r: f"{r.randint(10000, 99999)}-{r.randint(100, 999)}"),
    "fr": ("{n} rue {s}, {zip} {city}", ["de la Paix", "Victor Hugo", "des Lilas"],
           ["Paris", "Lyon", "Nantes"], lambda r: f"{r.randint(10000, 95999)}"),
    "de": ("{s} {n}, {zip} {city}", ["Hauptstraße", "Bahnhofstraße", "Lindenweg"],
           ["Berlin", "Hamburg", "München"], lambda r: f"{r.randint(10000, 99999)}"),
}
IBAN_SPEC = {"en": ("GB", "bank"), "es": ("ES", 20), "pt": ("PT", 21), "fr": ("FR", 23), "de": ("DE", 18)}
CURRENCY = {"en": "£{:.2f}", "es": "{:.2f} €", "pt": "R$ {:.2f}", "fr": "{:.2f} €", "de": "{:.2f} €"}
PLANS = ["Starter", "Team", "Business", "Enterprise"]
PRODUCTS = ["wireless headphones", "standing desk", "espresso machine", "running shoes",
            "4K monitor", "backpack", "smart watch", "office chair", "blender", "e-reader"]
ERRORS = ["HTTP 429 rate_limit_exceeded", "HTTP 401 invalid_api_key", "HTTP 500 internal_error",
          "HTTP 422 validation_failed", "timeout after 30s", "HTTP 403 forbidden_scope"]
COMPANY = "Northwind Shop"


def luhn_check_digit(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    digits = [c for c in number if c.isdigit()]
    return len(digits) >= 12 and luhn_check_digit("".join(digits[:-1])) == digits[-1]


def iban_check_digits(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return f"{98 - int(numeric) % 97:02d}"


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    if len(compact) < 15 or not compact[:2].isalpha():
        return False
    numeric = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return int(numeric) % 97 == 1


@dataclass
class Faker:
    """All fake values for one conversation; `rng` is the only source of randomness."""

    rng: random.Random
    lang: str

    def person(self) -> str:
        return f"{self.rng.choice(FIRST[self.lang])} {self.rng.choice(LAST[self.lang])}"

    def email(self, name: str) -> str:
        user = name.lower().replace(" ", self.rng.choice([".", "_", ""]))
        user = user.translate(str.maketrans("áéíóúãçüöäèêôàñ", "aeiouacuoaeeoan"))
        domain = self.rng.choice(["gmail.com", "outlook.com", "yahoo.com", "web.de", "proton.me"])
        return f"{user}{self.rng.randint(1, 99) if self.rng.random() < 0.4 else ''}@{domain}"

    def phone(self) -> str:
        r = self.rng
        n = lambda k: "".join(str(r.randint(0, 9)) for _ in range(k))  # noqa: E731
        return {
            "en": lambda: r.choice([f"+44 7{n(3)} {n(6)}", f"07{n(3)} {n(3)} {n(3)}"]),
            "es": lambda: r.choice([f"+34 6{n(2)} {n(3)} {n(3)}", f"6{n(2)} {n(2)} {n(2)} {n(2)}"]),
            "pt": lambda: r.choice([f"+55 11 9{n(4)}-{n(4)}", f"(21) 9{n(4)}-{n(4)}"]),
            "fr": lambda: r.choice([f"+33 6 {n(2)} {n(2)} {n(2)} {n(2)}", f"06 {n(2)} {n(2)} {n(2)} {n(2)}"]),
            "de": lambda: r.choice([f"+49 151 {n(8)}", f"0170 {n(7)}"]),
        }[self.lang]()

    def card(self) -> str:
        prefix = self.rng.choice(["4", "51", "52", "55", "37"])
        length = 15 if prefix == "37" else 16
        body = prefix + "".join(str(self.rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
        number = body + luhn_check_digit(body)
        sep = self.rng.choice([" ", "-", ""])
        groups = [number[i : i + 4] for i in range(0, len(number), 4)]
        return sep.join(groups)

    def iban(self) -> str:
        country, size = IBAN_SPEC[self.lang]
        if size == "bank":
            bban = "".join(self.rng.choice(string.ascii_uppercase) for _ in range(4))
            bban += "".join(str(self.rng.randint(0, 9)) for _ in range(14))
        else:
            bban = "".join(str(self.rng.randint(0, 9)) for _ in range(int(size)))
        iban = country + iban_check_digits(country, bban) + bban
        if self.rng.random() < 0.6:
            iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        return iban

    def address(self) -> str:
        fmt, streets, cities, zip_fn = STREETS[self.lang]
        return fmt.format(n=self.rng.randint(1, 220), s=self.rng.choice(streets),
                          city=self.rng.choice(cities), zip=zip_fn(self.rng))

    def order_id(self) -> str:
        return f"ORD-{self.rng.randint(100000, 99999999)}"

    def tracking_id(self) -> str:
        return "1Z" + "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))

    def ticket_id(self) -> str:
        return f"TCK-{self.rng.randint(10000, 999999)}"

    def amount(self) -> str:
        value = self.rng.choice([9.99, 14.5, 29.0, 49.99, 79.0, 120.0, 249.99, 18.75])
        text = CURRENCY[self.lang].format(value)
        return text.replace(".", ",") if self.lang in ("es", "pt", "fr", "de") else text

    def date(self) -> str:
        d, m = self.rng.randint(1, 28), self.rng.randint(1, 12)
        return f"{m:02d}/{d:02d}/2026" if self.lang == "en" and self.rng.random() < 0.3 else f"{d:02d}/{m:02d}/2026"

    def promo(self) -> str:
        return self.rng.choice(["SPRING", "WELCOME", "VIP", "SAVE"]) + str(self.rng.randint(10, 50))

    def slots(self) -> dict[str, str]:
        """One consistent identity per conversation (the same email on every turn)."""
        name = self.person()
        return {
            "customer_name": name, "agent_name": self.rng.choice(AGENTS), "company": COMPANY,
            "email": self.email(name), "phone": self.phone(), "order_id": self.order_id(),
            "card": self.card(), "iban": self.iban(), "address": self.address(),
            "product": self.rng.choice(PRODUCTS), "amount": self.amount(), "date": self.date(),
            "tracking_id": self.tracking_id(), "ticket_id": self.ticket_id(),
            "error_code": self.rng.choice(ERRORS), "plan": self.rng.choice(PLANS),
            "promo_code": self.promo(),
        }
