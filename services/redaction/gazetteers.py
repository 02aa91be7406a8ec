"""Word lists the detectors consult: given names, surnames, places, titles.

Compiled by hand from public facts (common given names and surnames in US and
UK records, US states, large towns); short on purpose: they back up the
named-entity model and the context patterns, they do not replace them.
"""

from __future__ import annotations

GIVEN_NAMES = frozenset(
    """
    aaron abigail adam adrian aisha alan albert alex alexander alexandra alice
    alicia alison amanda amber amelia amy andrea andrew angela anita ann anna
    anne anthony antonio arthur ashley barbara barry ben benjamin beth betty
    beverly bill billy bobby bonnie brandon brenda brian brittany bruce bryan
    carl carlos carol caroline carolyn catherine charles charlotte cheryl chloe
    chris christina christine christopher cindy claire clara craig crystal
    cynthia daniel danielle david dawn deborah debra denise dennis derek diana
    diane donald donna doris dorothy douglas dylan edward eileen elaine eleanor
    elena elizabeth ellen emily emma eric erica ethan eugene evelyn fatima
    fiona frances francis frank gabriel gary george georgia gerald gloria grace
    gregory hannah harold harry heather helen henry holly howard ian irene isaac
    isabella jack jacob jacqueline james jamie jane janet janice jason jean
    jeffrey jennifer jeremy jerry jesse jessica joan joanne joe joel john
    johnny jonathan jordan jose joseph joshua joyce juan judith judy julia
    julie justin karen katherine kathleen kathryn kayla keith kelly kenneth
    kevin kimberly kyle larry laura lauren lawrence leah lee leslie liam lily
    linda lisa logan lois lori louis lucas lucy luis madison margaret maria
    marie marilyn mark martha martin mary matthew megan melissa michael
    michelle mohammed muhammad nancy natalie nathan nicholas nicole noah norma
    oliver olivia oscar pamela patricia patrick paul paula peter philip
    phyllis priya rachel rafael ralph randy raymond rebecca richard rita robert
    robin roger ronald rose roy ruby russell ruth ryan samantha samuel sandra
    sara sarah scott sean sharon shirley sophia sophie stephanie stephen
    steven susan tammy teresa terry theresa thomas timothy tina todd tom tony
    tracy tyler valerie vanessa victor victoria vincent virginia walter wayne
    wendy william willie yusuf zachary zoe wei li ming jun hiroshi yuki akira
    kenji sakura arjun rahul anil sunita deepak omar hassan ali layla amir
    ibrahim mei chen hui jin minh thanh ngoc kwame ama kofi chidi ngozi
    olumide adebayo aleksandr olga ivan dmitri sergei natasha anastasia
    giulia marco luca francesca pierre jacques amelie chloe lukas jonas
    lena katarzyna piotr tomasz agnieszka pablo javier carmen lucia diego
    """.split()
)

SURNAMES = frozenset(
    """
    adams ahmed ali allen anderson bailey baker barnes bell bennett brooks
    brown bryant butler campbell carter chen clark coleman collins cook cooper
    cox cruz davies davis diaz edwards evans fisher flores foster garcia gomez
    gonzalez gray green griffin hall harris hayes henderson hernandez hill
    hughes jackson james jenkins johnson jones kaur kelly khan kim king lee
    lewis long lopez martin martinez miller mitchell moore morgan morris murphy
    murray nelson nguyen obrien okafor parker patel perez perry peterson
    phillips powell price ramirez reed reyes richardson rivera roberts
    robinson rodriguez rogers ross russell sanchez sanders scott shah singh
    smith stewart sullivan taylor thomas thompson torres turner walker wang
    ward watson white williams wilson wood wright wu young haddad kowalski
    nowak wisniewski schmidt muller schneider fischer weber meyer wagner
    becker rossi russo ferrari esposito bianchi dubois moreau laurent
    fernandez gutierrez mendez castillo ivanov smirnov petrov sato suzuki
    takahashi tanaka watanabe yamamoto nakamura kobayashi gupta sharma
    kumar reddy iyer mensah adeyemi okonkwo mwangi otieno
    """.split()
)

# Words that are given names but far more often something else; a name
# from this list needs a title or a capitalised surname beside it.
AMBIGUOUS_NAMES = frozenset(
    """
    bill frank grace hope joy mark may rose ruby will art august dawn faith
    june april summer victor lily jack long young white green gray brown
    king price ward wood hall bell cook rich
    """.split()
)

TITLES = (
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame",
    "rev", "nurse", "sister", "judge", "justice", "officer", "sgt", "capt",
)  # fmt: skip

US_STATES = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR",
    "california": "CA", "colorado": "CO", "connecticut": "CT", "delaware": "DE",
    "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID",
    "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS",
    "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD",
    "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
    "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE",
    "nevada": "NV", "new hampshire": "NH", "new jersey": "NJ",
    "new mexico": "NM", "new york": "NY", "north carolina": "NC",
    "north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR",
    "pennsylvania": "PA", "rhode island": "RI", "south carolina": "SC",
    "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT",
    "vermont": "VT", "virginia": "VA", "washington": "WA",
    "west virginia": "WV", "wisconsin": "WI", "wyoming": "WY",
    "district of columbia": "DC",
}  # fmt: skip
STATE_CODES = frozenset(US_STATES.values())

# Units a place may be without being an identifier under Safe Harbor:
# states and countries (and the UK's nations).
NOT_IDENTIFYING_PLACES = frozenset(US_STATES) | frozenset(
    [
        *"""
    america usa us u.s. u.s.a. united states canada mexico uk u.k. britain
    great britain united kingdom england scotland wales northern ireland
    ireland france germany spain italy portugal netherlands belgium india china
    japan australia europe asia africa
    """.split(),
        "united states",
        "united kingdom",
        "great britain",
        "northern ireland",
        "new zealand",
        "south africa",
    ]
)

CITIES = frozenset(
    """
    atlanta austin baltimore birmingham boston bristol brooklyn cambridge
    cardiff charlotte chicago cleveland columbus dallas denver detroit
    edinburgh glasgow houston indianapolis jacksonville leeds leicester
    liverpool london manchester memphis miami milwaukee minneapolis nashville
    newcastle norwich nottingham oakland oxford philadelphia phoenix
    pittsburgh portland raleigh reading sacramento seattle sheffield
    southampton springfield tampa toledo tucson york
    """.split()
) | frozenset(
    [
        "san antonio",
        "san diego",
        "san francisco",
        "san jose",
        "los angeles",
        "las vegas",
        "fort worth",
        "el paso",
        "oklahoma city",
        "kansas city",
        "salt lake city",
        "new orleans",
        "st louis",
        "st. louis",
    ]
)

STREET_SUFFIXES = (
    "street", "st", "avenue", "ave", "road", "rd", "lane", "ln", "drive", "dr",
    "boulevard", "blvd", "court", "ct", "way", "place", "pl", "terrace", "close",
    "crescent", "square", "sq", "parkway", "pkwy", "highway", "hwy", "circle",
    "cir", "trail", "row", "mews", "grove", "gardens", "walk", "hill", "park",
)  # fmt: skip
