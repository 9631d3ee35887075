"""PII redaction to typed placeholders: `<EMAIL>`, `<PHONE>`, `<CARD>`, `<IBAN>`, `<ORDER_ID>`,
`<TRACKING_ID>`, `<ADDRESS>`, `<NAME>`.

Design: precise detectors run first and claim their spans. Each detector pairs a pattern with a
validator where the format has one: Luhn for cards, mod-97 for IBANs. Broader heuristics run after
them and cannot overlap a claimed span: phone numbers, and street addresses (a street-type word in
one of five languages, then a grammar of what may follow: units, floors, districts, cities,
states, postcodes). Names have no checksum and no offline NER model installs here, so they come
from evidence in the text:
1. cue phrases in the five languages ("my name is", "me llamo", "ich heiße", "Hi <Name>", ...),
   titles ("Sra. Domínguez") and form fields ("Karteninhaber LUKAS VOGEL");
2. a first-name gazetteer (gender-guesser's ~45k names), used only where the position fits a
   name: "First Last", a vocative ("Perfecto Alba,"), a signature, "Kevin from billing";
3. names the caller already knows (a Zendesk requester's name, a CSV `customer_name` column);
4. propagation: a name found anywhere in a conversation is redacted everywhere in it.

The numbers we claim are measured, not assumed: `python -m finetune redaction-eval` reports
recall and precision per type on planted synthetic PII, and on hand-labelled messages written
apart from this module (tests/data/pii_holdout*.jsonl; see docs/data.md for which was used to tune).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from finetune.data.fakes import iban_valid, luhn_valid
from finetune.data.schema import Conversation, Message

PLACEHOLDER = re.compile(r"<[A-Z_]+>")
UPPER = "A-ZÀ-ÖØ-ÞĀ-Ž"
LOWER = "a-zß-öø-ÿā-ž"
NAME_WORD = rf"[{UPPER}][{LOWER}'’-]+"
FULL_NAME = rf"{NAME_WORD}(?:[ \t]+(?:(?:de|da|do|dos|das|del|la|van|von|der)[ \t]+)?{NAME_WORD}){{0,2}}"

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b")
CARD = re.compile(r"(?<![+\d])\b[2-6](?:[ -]?\d){11,17}\d\b")  # IIN starts with 2-6
ORDER_ID = re.compile(r"\b(?:ORD|ORDER|PED|CMD|BEST)[-#]?\d{5,10}\b|#\d{6,10}\b", re.IGNORECASE)
TRACKING_ID = re.compile(r"\b1Z[A-Z0-9]{16}\b|\b[A-Z]{2}\d{9}[A-Z]{2}\b")
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d(?:[ ./-]?\d){6,13}(?!\w)")
ADDRESS = re.compile(
    "|".join([
        # en: "12 Baker Street, London NW1 6XE"
        rf"\b\d{{1,5}}[ ](?-i:{NAME_WORD}(?:[ ]{NAME_WORD})?)[ ](?:Street|St\.?|Road|Rd\.?|Avenue|Ave\.?|"
        r"Boulevard|Blvd\.?|Lane|Ln\.?|Way|Drive|Dr\.?|Close|Court|Ct\.?|Place|Pl\.?|Square|Terrace|"
        r"Crescent|Parkway|Pkwy\.?|Highway|Hwy\.?)(?![\w])",
        # es: "Calle Mayor 21, 28013 Madrid"; pt: "Rua Augusta, 9, São Paulo - 01305-000"
        r"\b(?:Calle|C/|Avenida|Avda\.?|Av\.|Plaza|Pza\.?|Paseo|Ronda|Camino|Carrer|Rua|R\.|Travessa|"
        r"Praça|Alameda|Estrada|Rodovia)[ ]?[^,\n\d]{2,40}?,?[ ]\d{1,5}[A-Za-z]?",
        # fr: "191 rue Victor Hugo, 69002 Lyon"
        r"\b\d{1,4}(?:[ ]?(?:bis|ter))?,?[ ](?:rue|avenue|av\.|boulevard|bd|place|allée|impasse|"
        r"chemin|quai|route|cours|square)[ ][^,.\n]{2,40}",
        # de: "Lindenweg 128, 87201 Hamburg"
        rf"\b(?:[{UPPER}][{LOWER}-]*(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|"
        rf"chaussee|steig|pfad)|(?-i:(?:Am|An der|Im|Auf dem|Zum|Zur)[ ]{NAME_WORD}))[ ]\d{{1,4}}[a-z]?",
    ]),
    re.IGNORECASE,
)
# What may follow a street and number: units, floors, districts, cities, states, postcodes.
ADDRESS_TAIL = re.compile(
    "|".join([
        r",?[ ](?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|apto|ap|bloco|casa|bajo|piso|planta|"
        r"escalera|esc|étage|bât|bâtiment|Stock|OG|EG|Hinterhaus)\.?(?:[ ]?[\w-]{1,5})?(?![\w])",
        r",?[ ]\d{1,2}[ºª°.]?[ ]?[A-Za-z]?(?:[ ](?:izq|izda|dcha|der)\.?)?(?=[,\s])",
        r",?[ ][A-Z]{2}[ ,]+\d{5}(?:-\d{3,4})?",  # US state + ZIP, BR state + CEP
        rf",?[ ]\d{{5}}(?:-\d{{3}})?(?:[ ]{NAME_WORD}(?:[ -]{NAME_WORD})?)?",  # postcode + city
        r",?[ ][A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}",  # UK postcode
        rf"[ ]-[ ](?:[A-Z]{{2}}(?![\w])|\d{{5}}-?\d{{3}}|{NAME_WORD}(?:[ ](?:de|da|do|dos)?[ ]?{NAME_WORD})*)",
        rf",[ ]{NAME_WORD}(?:[ ](?:de|da|do|dos|del|la|am|an der)?[ ]?{NAME_WORD}){{0,3}}"
        r"(?=[ ]-[ ]|,|[ ][A-Z]{2}[ ]\d|[ ][A-Z]{1,2}\d|[.;!?]|\s*$)",
    ])
)


def _extend_address(text: str, end: int) -> int:
    """Grow a street match over the parts of an address that follow it."""
    while m := ADDRESS_TAIL.match(text, end):
        end = m.end()
    return end


# Cue phrases after which a person's name follows (first letter capitalised).
NAME_CUES = [
    r"my name is", r"name is", r"i am", r"i'm", r"this is", r"it's", r"speaking with",
    r"hi", r"hello", r"hey", r"dear", r"chatting with", r"talking to", r"under", r"thanks", r"thank you", r"regards,?", r"cheers,?",
    r"name:", r"account holder:?", r"under the name(?: of)?", r"in the name of", r"for",
    r"me llamo", r"mi nombre es", r"soy", r"le saluda", r"le atiende", r"hola", r"estimad[oa]", r"a nombre de", r"titular:?",
    r"buenos días", r"buenas tardes", r"gracias", r"saludos,?", r"señora?", r"don|doña",
    r"meu nome é", r"me chamo", r"sou", r"aqui é", r"fala", r"fala é", r"nome de", r"olá", r"oi", r"prezad[oa]", r"em nome de", r"obrigad[oa]",
    r"bom dia", r"boa tarde", r"senhora?",
    r"je m'appelle", r"mon nom est", r"je suis", r"bonjour", r"bonsoir", r"madame", r"monsieur",
    r"au nom de", r"titulaire:?", r"merci", r"cordialement,?", r"ici", r"c'est",
    r"ich heiße", r"ich heisse", r"mein name ist", r"hier ist", r"ich bin", r"hier spricht",
    r"hier schreibt", r"ask for", r"asking for", r"preguntad por", r"pregunte por", r"pregunta por",
    r"pergunte por", r"falar com", r"fala com", r"demandez", r"demander", r"fragt nach",
    r"fragen sie nach", r"hallo", r"guten tag",
    r"sehr geehrte[rs]?", r"frau", r"herr", r"auf den namen", r"inhaber(?:in)?:?", r"danke",
    r"viele grüße,?", r"mit freundlichen grüßen,?", r"liebe[rs]?",
]
TITLES = r"(?:Mr|Mrs|Ms|Miss|Dr|Sr|Sra|Srta|Dña|M|Mme|Mlle|Herr|Frau|Dona|Dom)\.?"
NAME_CUE = re.compile(
    r"(?:(?<=^)|(?<=[\s,.;:!¡¿(\"'—-]))(?:" + "|".join(NAME_CUES) + r")[\s,]+"
    r"(?:(?:o|a|la|el|le|der|die|dona|don|doña)[ \t]+)?(?:" + TITLES + r"[ \t]+)?"
    rf"(?P<name>(?-i:{FULL_NAME}))",
    re.IGNORECASE,
)
# After these, people type their name any way they like: lowercase, or in capitals on forms.
STRONG_CUE = re.compile(
    r"(?:my name is|my name's|me llamo|mi nombre es|je m'appelle|mon nom est|ich heiße|ich heisse|"
    r"mein name ist|meu nome é|me chamo|this is|it's|soy|sou|c'est|hier ist|ich bin|"
    r"(?:name on (?:the )?card|cardholder|card holder|titular(?: de la tarjeta| do cartão)?|"
    r"titulaire(?: de la carte)?|nome no cartão|nom sur la carte|karteninhaber(?:in)?|"
    r"kontoinhaber(?:in)?)[ \t]*[:：]?|(?:(?:full )?name|nombre(?: completo)?|nome(?: completo)?|"
    r"nom(?: complet)?)[ \t]*[:：])"
    rf"[ \t]*(?:{TITLES}[ \t]+)?(?P<name>[{UPPER}{LOWER}][{LOWER}{UPPER}'’-]+(?:[ \t]+(?:de |da |do |del |van |von )?"
    rf"[{UPPER}{LOWER}][{LOWER}{UPPER}'’.-]*){{0,3}})",
    re.IGNORECASE,
)
RELATIONS = (r"(?:husband|wife|son|daughter|colleague|partner|marido|esposa|hijo|hija|filho|filha|"
             r"mari|femme|fils|fille|Mann|Frau|Sohn|Tochter|Kollege|Kollegin|colega|collègue)")
# A title alone also introduces a (sur)name: "Ms. Kowalski", "Sr. Domínguez", "Frau Yilmaz".
TITLED = re.compile(rf"(?<![\w])(?i:{TITLES})[ \t]+(?P<name>{FULL_NAME})")
# Capitalised words that follow cues but are not names (greetings, company, pronoun-likes).
NOT_NAMES = {
    "northwind", "shop", "support", "team", "the", "customer", "service", "sorry", "happy", "glad",
    "here", "back", "still", "not", "just", "very", "so", "again", "ok", "okay", "yes", "no",
    "please", "good", "morning", "afternoon", "evening", "all", "everyone", "there", "you",
    "your", "a", "an", "in", "on", "at", "to", "it", "is", "this", "that", "we", "our", "me",
    "sehr", "guten", "tag", "hallo", "danke", "vielen", "bonjour", "merci", "madame", "monsieur",
    "hola", "gracias", "buenos", "días", "olá", "obrigado", "obrigada", "bom", "dia", "boa", "tarde",
    "equipe", "equipo", "équipe", "kundenservice", "servicio", "atendimento", "le", "la", "el",
    "der", "die", "das", "un", "une", "um", "uma", "ich", "je", "yo", "eu", "nous", "wir",
    "ihr", "ihre", "ihnen", "sie", "vous", "usted", "você", "cliente", "kunde", "kundin",
    "api", "premium", "starter", "business", "enterprise", "pro", "plus", "gdpr", "rgpd", "dsgvo",
    "lgpd", "iban", "pix", "paypal", "visa", "mastercard", "amex", "sepa", "i'd", "i'll", "i've",
    "tarif", "plan", "billing", "settings", "grüße", "account", "order", "invoice", "mein", "meine",
    "eine", "ein", "bei", "konto", "tage", "ende", "mal", "que", "hay", "se", "en", "lo", "de",
    "da", "do", "perfecto", "perfeito", "parfait", "perfect", "france", "mac", "beste", "go",
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "monday", "friday", "sunday", "salvador", "natal",
    "hi", "ja", "claro", "sim", "non", "oui", "si", "sí", "yes", "nein", "artikel", "bien", "ben",
}


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


def _luhn_span(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group())
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _phone_span(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group())
    text = m.group()
    if not 8 <= len(digits) <= 15:
        return False
    # Dates (01.02.2026), amounts (1.234,56) and bare years are not phone numbers.
    return not re.fullmatch(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}", text)


def _name_ok(name: str) -> bool:
    words = [w for w in re.split(r"[ \t]+", name) if w]
    return bool(words) and words[0].lower() not in NOT_NAMES and not PLACEHOLDER.fullmatch(name)


def _trim_name(name: str) -> str:
    words = re.split(r"[ \t]+", name)
    while words and words[-1].lower() in NOT_NAMES:
        words.pop()
    return " ".join(words)


DETECTORS: list[tuple[str, re.Pattern[str], object]] = [
    ("EMAIL", EMAIL, None),
    ("IBAN", IBAN, lambda m: iban_valid(m.group())),
    ("CARD", CARD, _luhn_span),
    ("ORDER_ID", ORDER_ID, None),
    ("TRACKING_ID", TRACKING_ID, None),
    ("ADDRESS", ADDRESS, None),
    ("PHONE", PHONE, _phone_span),
]


def _claim(spans: list[Span], start: int, end: int, label: str) -> None:
    if all(end <= s.start or start >= s.end for s in spans):
        spans.append(Span(start, end, label))


# "…, Hugo Lefèvre." (a first and last name addressed after a comma) and "Noa hier" / "Sam here".
VOCATIVE = re.compile(rf"(?<=, )(?P<name>{NAME_WORD}[ ]{NAME_WORD})(?=[.!?,;])")
POSTFIX = re.compile(
    rf"(?<![\w])(?P<name>{NAME_WORD})[ ](?:hier|here|aquí|aqui\b|from the|de l'équipe|du service|"
    r"del equipo|da equipe)\b"
)


@cache
def _first_names() -> Any:
    """A first-name gazetteer (gender-guesser's ~45k names from many countries)."""
    import gender_guesser.detector as gender

    return gender.Detector(case_sensitive=False)


def _known_first_name(word: str) -> bool:
    return word.lower() not in NOT_NAMES and _first_names().get_gender(word) != "unknown"


def _strong_name(raw: str) -> str:
    """Keep the name part of what follows a strong cue: stop at the first word that is a common
    lowercase word rather than a name (e.g. "maria and my order ..." -> "maria")."""
    words = []
    for w in raw.split():
        if words and (w.lower() in NOT_NAMES or (w.islower() and not _known_first_name(w))):
            break
        words.append(w.rstrip(".,"))
    return " ".join(words)


GAZETTEER_CANDIDATE = re.compile(
    rf"(?<![\w@.'’-])(?P<first>{NAME_WORD}|[{LOWER}]{{3,}}(?=\s*$))(?=(?P<rest>(?:[ \t]+{NAME_WORD}){{0,2}}))"
)


def find_names(text: str) -> set[str]:
    """Names from cue phrases, titles, form fields, vocatives, "X here", and known first names."""
    names = set()
    for m in [*NAME_CUE.finditer(text), *VOCATIVE.finditer(text), *POSTFIX.finditer(text),
              *TITLED.finditer(text)]:
        name = _trim_name(m.group("name"))
        if name and _name_ok(name):
            names.add(name)
    for m in STRONG_CUE.finditer(text):
        name = _strong_name(m.group("name"))
        first = name.split()[0] if name else ""
        if name and _name_ok(name.title()) and (name[0].isupper() and not name.isupper()
                                                or _known_first_name(first)):
            names.add(name)
    for m in GAZETTEER_CANDIDATE.finditer(text):
        first, rest = m.group("first"), m.group("rest").strip()
        if not _known_first_name(first):
            continue
        before, after = text[: m.start()], text[m.end():]
        sentence_start = re.search(r"(?:^|[.!?:]\s+|\n\s*)$", before) is not None
        vocative = re.match(r"\s*[,!]", after) is not None and re.fullmatch(
            r"\W*(?:\w+[ \t]+){1,2}", before) is not None
        signature = not after.strip() and re.search(r"(?:\n|[—–-][ \t]*|,[ \t]*)$", before)
        relation = re.search(rf"(?i:{RELATIONS})[ \t]+$", before) is not None
        leading = sentence_start and re.match(r"[ \t]+(?:from|here|de|da|von|vom|du|del)\b", after)
        if first.islower() and not signature:
            continue
        if rest or vocative or signature or relation or leading or not sentence_start:
            names.add(_trim_name(f"{first} {rest}".strip()))
    return {n for n in names if n}


def detect(text: str, names: Iterable[str] = ()) -> list[Span]:
    spans: list[Span] = []
    for label, pattern, check in DETECTORS:
        for m in pattern.finditer(text):
            if check is None or check(m):  # type: ignore[operator]
                end = _extend_address(text, m.end()) if label == "ADDRESS" else m.end()
                _claim(spans, m.start(), end, label)
    full = sorted({n for n in names if n}, key=len, reverse=True)
    parts = sorted({w for n in full for w in n.split() if len(w) > 2 and w.lower() not in NOT_NAMES},
                   key=len, reverse=True)
    for part in full + parts:  # whole names first, then a first or last name on its own
        for m in re.finditer(rf"(?<![\w]){re.escape(part)}(?![\w])", text):
            _claim(spans, m.start(), m.end(), "NAME")
    return sorted(spans, key=lambda s: s.start)


def apply(text: str, spans: list[Span]) -> str:
    out, pos = [], 0
    for s in spans:
        out += [text[pos : s.start], f"<{s.label}>"]
        pos = s.end
    return "".join(out + [text[pos:]])


def redact_text(text: str, known_names: Iterable[str] = ()) -> str:
    return apply(text, detect(text, {*known_names, *find_names(text)}))


def redact_conversation(conv: Conversation, known_names: Iterable[str] = ()) -> Conversation:
    """Redact every message; a name found in any message is redacted in all of them."""
    names = set(known_names)
    for m in conv.messages:
        names |= find_names(m.content)
    messages = [Message(role=m.role, content=apply(m.content, detect(m.content, names)))
                for m in conv.messages]
    return conv.model_copy(update={"messages": messages})
