"""Plausible, multilingual names for companies and people.

The program runs in Korea, Turkey and Europe, so test data has to exercise Hangul, Turkish dotted
and dotless i, umlauts and Polish letters in names, while e-mail addresses stay ASCII the way real
ones are. Korean words carry their romanization because it cannot be derived by stripping accents.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from random import Random

# country -> (locale, IANA time zone, standard UTC offset in hours, e-mail domain suffix)
COUNTRIES: dict[str, tuple[str, str, int, str]] = {
    "KR": ("ko", "Asia/Seoul", 9, "co.kr"),
    "TR": ("tr", "Europe/Istanbul", 3, "com.tr"),
    "DE": ("de", "Europe/Berlin", 1, "de"),
    "AT": ("de", "Europe/Vienna", 1, "at"),
    "GB": ("en", "Europe/London", 0, "co.uk"),
    "US": ("en", "America/New_York", -5, "com"),
    "NL": ("nl", "Europe/Amsterdam", 1, "nl"),
    "FR": ("fr", "Europe/Paris", 1, "fr"),
    "PL": ("pl", "Europe/Warsaw", 1, "pl"),
}
COUNTRY_WEIGHTS: dict[str, float] = {
    "KR": 0.2, "TR": 0.2, "DE": 0.17, "AT": 0.03, "GB": 0.1,
    "US": 0.1, "NL": 0.07, "FR": 0.07, "PL": 0.06,
}

# (word, ascii) pairs; ascii is None where stripping diacritics is good enough.
_KO_STEMS = [("한빛", "hanbit"), ("대성", "daesung"), ("세원", "sewon"), ("미래", "mirae"),
             ("동양", "dongyang"), ("삼진", "samjin"), ("새한", "saehan"), ("태광", "taekwang"),
             ("한성", "hansung"), ("청운", "cheongun"), ("금강", "geumgang"), ("아람", "aram")]
_KO_TRADES = [("정밀", "precision"), ("산업", "industry"), ("전자", "electronics"),
              ("물산", "trading"), ("테크", "tech"), ("기계", "machinery"), ("화학", "chem"),
              ("상사", "corp"), ("시스템", "systems"), ("인쇄", "print"), ("물류", "logis")]
_KO_SURNAMES = [("김", "kim"), ("이", "lee"), ("박", "park"), ("최", "choi"), ("정", "jung"),
                ("강", "kang"), ("조", "cho"), ("윤", "yoon"), ("장", "jang"), ("임", "lim"),
                ("한", "han"), ("오", "oh")]
_KO_GIVEN = [("민준", "minjun"), ("서연", "seoyeon"), ("지훈", "jihoon"), ("수빈", "subin"),
             ("현우", "hyunwoo"), ("지민", "jimin"), ("예준", "yejun"), ("하은", "haeun"),
             ("도윤", "doyoon"), ("서준", "seojun"), ("유진", "yujin"), ("성민", "sungmin")]

_STEMS: dict[str, list[str]] = {
    "tr": ["Yıldız", "Anadolu", "Ege", "Marmara", "Doğan", "Kartal", "Başak", "Toros",
           "Akdeniz", "Güneş", "Işık", "Öncü"],
    "de": ["Nordwind", "Bergmann", "Rheintal", "Alpen", "Hanse", "Schwarzwald", "Elbe",
           "Weser", "Falken", "Lindner", "Süderhof", "Brückner"],
    "en": ["Northgate", "Riverside", "Summit", "Oakridge", "Bluewater", "Ironbridge",
           "Kingsway", "Westfield", "Redwood", "Harbor", "Ashford", "Pinecrest"],
    "fr": ["Lumière", "Atlantique", "Provence", "Mistral", "Bellevue", "Garonne", "Étoile",
           "Vercors"],
    "nl": ["Oranje", "Delta", "Noordzee", "Polder", "Tulp", "Waddenzee", "Veluwe", "Maasland"],
    "pl": ["Wisła", "Mazowsze", "Orzeł", "Bałtyk", "Karpaty", "Tatry", "Warta", "Słoneczna"],
}
_TRADES: dict[str, list[str]] = {
    "tr": ["Makina", "Tekstil", "Lojistik", "Gıda", "Yapı", "Otomotiv", "Elektrik", "Plastik",
           "Kimya", "Matbaacılık"],
    "de": ["Logistik", "Maschinenbau", "Druck", "Elektrotechnik", "Bürotechnik", "Metallbau",
           "Kunststoff", "Medizintechnik", "Handel", "Versand"],
    "en": ["Logistics", "Engineering", "Printing", "Supplies", "Manufacturing", "Healthcare",
           "Office Solutions", "Systems", "Foods", "Labs"],
    "fr": ["Logistique", "Imprimerie", "Industries", "Services", "Mécanique", "Distribution"],
    "nl": ["Logistiek", "Techniek", "Drukkerij", "Handel", "Installatie", "Metaal"],
    "pl": ["Logistyka", "Technika", "Druk", "Handel", "Maszyny", "Budownictwo"],
}
_FORMS: dict[str, list[str]] = {
    "KR": ["주식회사", "(주)"], "TR": ["A.Ş.", "Ltd. Şti."], "DE": ["GmbH", "AG", "GmbH & Co. KG"],
    "AT": ["GmbH", "AG"], "GB": ["Ltd", "PLC"], "US": ["Inc.", "LLC", "Corp."],
    "NL": ["B.V.", "N.V."], "FR": ["SAS", "SARL", "SA"], "PL": ["Sp. z o.o.", "S.A."],
}
# Public bodies and schools are named differently from companies; "{}" is the stem.
_PUBLIC: dict[str, tuple[str, str]] = {
"tr": ("{} Belediyesi", "{} Üniversitesi"),
    "de": ("Stadtwerke {}", "Hochschule {}"), "en": ("{} County Council", "{} College"),
    "fr": ("Mairie de {}", "Université {}"), "nl": ("Gemeente {}", "Hogeschool {}"),
    "pl": ("Urząd Miasta {}", "Uniwersytet {}"),
}
CITIES: dict[str, list[str]] = {
    "KR": ["서울", "부산", "인천", "대구", "광주"], "TR": ["İstanbul", "Ankara", "İzmir", "Bursa"],
    "DE": ["Hamburg", "München", "Köln", "Stuttgart"], "AT": ["Wien", "Graz", "Linz"],
    "GB": ["Manchester", "Leeds", "Bristol"], "US": ["Chicago", "Dallas", "Denver"],
    "NL": ["Rotterdam", "Utrecht", "Eindhoven"], "FR": ["Lyon", "Lille", "Nantes"],
    "PL": ["Kraków", "Gdańsk", "Poznań"],
}
_NATIONAL = {"KR": "Korea", "TR": "Türkiye", "DE": "Deutschland", "AT": "Österreich", "GB": "UK",
             "US": "USA", "NL": "Nederland", "FR": "France", "PL": "Polska"}
_KO_CITIES_ASCII = ["seoul", "busan", "incheon", "daegu", "gwangju"]
_FIRST: dict[str, list[str]] = {
    "tr": ["Ayşe", "Mehmet", "Fatma", "Mustafa", "Zeynep", "Emre", "Elif", "Burak", "Selin",
           "Murat", "İbrahim", "Gül"],
    "de": ["Lukas", "Anna", "Jonas", "Leonie", "Felix", "Marie", "Maximilian", "Sophie", "Paul",
           "Hannah", "Jürgen", "Birgit"],
    "en": ["James", "Olivia", "William", "Emma", "Oliver", "Sophia", "Jack", "Amelia", "Henry",
           "Grace", "Daniel", "Chloe"],
    "fr": ["Camille", "Louis", "Léa", "Hugo", "Chloé", "Jules", "Manon", "Gabriel"],
    "nl": ["Daan", "Emma", "Sem", "Julia", "Lucas", "Sanne", "Bram", "Fleur"],
    "pl": ["Jakub", "Zuzanna", "Kacper", "Julia", "Szymon", "Maja", "Piotr", "Łucja"],
}
_LAST: dict[str, list[str]] = {
    "tr": ["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Öztürk", "Aydın", "Arslan",
           "Doğan"],
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Hoffmann", "Schäfer"],
    "en": ["Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Clark",
           "Walker", "Wright"],
    "fr": ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Lefèvre"],
    "nl": ["de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Mulder"],
    "pl": ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamiński", "Lewandowski", "Zieliński"],
}
_DE = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
# Letters that Unicode decomposition does not reduce to ASCII.
_ASCII_FIXES = str.maketrans({"ı": "i", "ł": "l", "Ł": "L", "ß": "ss", "ø": "o", "æ": "ae"})


@lru_cache(maxsize=8192)  # names come from small word lists; this is called per person
def ascii_slug(text: str, sep: str = "") -> str:
    """Lower-case ASCII letters and digits only, words joined by `sep`."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_FIXES))
    words, word = [], []
    for ch in decomposed.lower():
        if ch.isascii() and ch.isalnum():
            word.append(ch)
        elif not unicodedata.combining(ch) and word:
            words.append("".join(word))
            word = []
    if word:
        words.append("".join(word))
    return sep.join(words)


@dataclass(frozen=True, slots=True)
class CompanyName:
    name: str
    stem: str  # display stem, reused for subsidiaries of a group
    slug: str  # ASCII base of the e-mail domain
    latin: str  # the stem in Latin script, for subsidiaries abroad ("Hanbit Deutschland GmbH")


def company_name(rng: Random, country: str, segment: str) -> CompanyName:
    locale = COUNTRIES[country][0]
    form = rng.choice(_FORMS[country])
    if locale == "ko":
        (stem, stem_ascii), (trade, trade_ascii) = rng.choice(_KO_STEMS), rng.choice(_KO_TRADES)
        if segment == "education":
            return CompanyName(f"{stem}대학교", stem, f"{stem_ascii}-univ", stem_ascii.title())
        if segment == "public-sector":
            i = rng.randrange(len(CITIES[country]))
            city = CITIES[country][i]
            city_ascii = _KO_CITIES_ASCII[i]
            return CompanyName(f"{city}시청", city, f"{city_ascii}-city", city_ascii.title())
        name = f"{stem}{trade} {form}" if form != "(주)" else f"(주){stem}{trade}"
        return CompanyName(name, stem, f"{stem_ascii}{trade_ascii}", stem_ascii.title())
    if segment in ("public-sector", "education"):
        city = rng.choice(CITIES[country])
        name = _PUBLIC[locale][segment == "education"].format(city)
        return CompanyName(name, city, ascii_slug(name, "-"), city)
    # A family name as stem ("Kaya Tekstil") is as common as a place or image word.
    stem = rng.choice(_LAST[locale] if rng.random() < 0.3 else _STEMS[locale])
    trade = rng.choice(_TRADES[locale])
    slug_source = f"{stem} {trade}".translate(_DE) if locale == "de" else f"{stem} {trade}"
    return CompanyName(f"{stem} {trade} {form}", stem, ascii_slug(slug_source, "-"), stem)


def subsidiary_name(rng: Random, parent: CompanyName, parent_country: str,
                    country: str) -> CompanyName:
    """A group company: a new trade under the group's stem at home, a national company abroad."""
    locale = COUNTRIES[country][0]
    if country != parent_country:
        form = _FORMS[country][0]
        national = f"{parent.latin} {_NATIONAL[country]}"
        name = f"(주){national}" if form == "(주)" else f"{national} {form}"
        return CompanyName(name, parent.stem, parent.slug, parent.latin)
    form = rng.choice(_FORMS[country])
    if locale == "ko":
        trade, trade_ascii = rng.choice(_KO_TRADES)
        name = f"(주){parent.stem}{trade}" if form == "(주)" else f"{parent.stem}{trade} {form}"
        return CompanyName(name, parent.stem, f"{parent.slug}-{trade_ascii}", parent.latin)
    trade = rng.choice(_TRADES[locale])
    return CompanyName(f"{parent.stem} {trade} {form}", parent.stem,
                       f"{parent.slug}-{ascii_slug(trade, '-')}", parent.latin)


def site_name(rng: Random, parent_name: str, country: str) -> str:
    return f"{parent_name} – {rng.choice(CITIES[country])}"


def person_name(rng: Random, locale: str) -> tuple[str, str, str]:
    """(display name, ascii first name, ascii last name)."""
    if locale == "ko":
        (last, last_a), (first, first_a) = rng.choice(_KO_SURNAMES), rng.choice(_KO_GIVEN)
        return f"{last}{first}", first_a, last_a
    first, last = rng.choice(_FIRST[locale]), rng.choice(_LAST[locale])
    if locale == "de":  # Germans write Müller as mueller, not muller, in addresses
        return f"{first} {last}", ascii_slug(first.translate(_DE)), ascii_slug(last.translate(_DE))
    return f"{first} {last}", ascii_slug(first), ascii_slug(last)
