"""Language material for the storm generator: post templates, co-hashtags, names, bios and places.

Templates are written the way supporters of a human-rights defender write during a hashtag storm, in the
languages such storms actually mix (Arabic posts are in Arabic). Placeholders:

- ``{tags}``: the post's hashtags (campaign tags and co-hashtags) and, sometimes, a mention of an official;
- ``{account}``: a mention of one of the campaign's own accounts (templates with it are skipped when the
  campaign has none).

Everything here is plain data; `generator.py` turns it into text with entity offsets.
"""

from __future__ import annotations

# Language mix of a transnational solidarity storm: English dominates, Arabic is strong, European
# languages follow. Weights, not percentages.
LANGUAGE_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("en", 44.0),
    ("ar", 24.0),
    ("fr", 8.0),
    ("es", 7.0),
    ("de", 5.0),
    ("it", 4.0),
    ("tr", 3.0),
    ("nl", 3.0),
    ("und", 2.0),  # X tags hashtag-only posts as "und"
)

CAMPAIGN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "Human rights defenders are not criminals. Drop the charges now! {tags}",
        "Peaceful activism is not a crime. We stand with {account} today and every day {tags}",
        "Standing in solidarity with a defender who has spent his life documenting abuses in Hebron ✊ {tags}",
        "The world is watching. End the judicial harassment of human rights defenders {tags}",
        "Defending human rights is a right, not a crime & we will keep saying it {tags}",
        "{tags} Join the storm: justice for those who speak up peacefully",
        "I am raising my voice for {account} because silence protects injustice {tags}",
        "Nonviolence is courage. Drop all charges against peaceful defenders 🕊️ {tags}",
    ),
    "ar": (
        "المدافعون عن حقوق الإنسان ليسوا مجرمين. أسقطوا التهم الآن {tags}",
        "نقف اليوم مع {account} لأن النضال السلمي ليس جريمة {tags}",
        "التضامن مع المدافعين عن حقوق الإنسان في الخليل واجب ✊ {tags}",
        "العالم يراقب. أوقفوا الملاحقة القضائية للمدافعين عن حقوق الإنسان {tags}",
        "{tags} شاركوا في الحملة: العدالة لكل من يرفع صوته بسلام",
        "الحرية للمدافعين عن حقوق الإنسان 🇵🇸 {tags}",
    ),
    "fr": (
        "Les défenseurs des droits humains ne sont pas des criminels. Abandonnez les poursuites ! {tags}",
        "Solidarité avec {account} : le militantisme pacifique n'est pas un crime {tags}",
        "Le monde regarde. Fin du harcèlement judiciaire des défenseurs à Hébron {tags}",
        "Justice & dignité pour ceux qui défendent les droits humains ✊ {tags}",
    ),
    "es": (
        "Defender los derechos humanos no es un delito. ¡Retiren los cargos ya! {tags}",
        "Hoy estamos con {account}: el activismo pacífico no es un crimen {tags}",
        "El mundo está mirando. Basta de acoso judicial a los defensores {tags}",
        "Solidaridad con quienes documentan abusos en Hebrón ✊ {tags}",
    ),
    "de": (
        "Menschenrechtsverteidiger sind keine Kriminellen. Lasst die Anklagen fallen! {tags}",
        "Solidarität mit {account}: Friedlicher Aktivismus ist kein Verbrechen {tags}",
        "Die Welt schaut hin. Schluss mit der juristischen Schikane in Hebron {tags}",
    ),
    "it": (
        "Difendere i diritti umani non è un reato. Ritirate le accuse! {tags}",
        "Siamo con {account}: l'attivismo nonviolento non è un crimine {tags}",
        "Il mondo guarda. Basta con le persecuzioni giudiziarie a Hebron {tags}",
    ),
    "tr": (
        "İnsan hakları savunucuları suçlu değildir. Suçlamalar düşürülsün! {tags}",
        "{account} ile dayanışma içindeyiz: barışçıl aktivizm suç değildir {tags}",
        "Dünya izliyor. Savunuculara yönelik yargısal tacize son {tags}",
    ),
    "nl": (
        "Mensenrechtenverdedigers zijn geen criminelen. Laat de aanklachten vallen! {tags}",
        "Solidariteit met {account}: vreedzaam activisme is geen misdaad {tags}",
        "De wereld kijkt mee. Stop de juridische intimidatie in Hebron {tags}",
    ),
    "und": ("{tags}", "{tags} ✊", "✊🕊️ {tags}"),
}

# Everyday posts on the same topics that never carry a campaign hashtag: the noise a collector must not
# count as campaign posts even though they share co-hashtags with it.
NOISE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "en": (
        "New report on settler violence in the Old City published today {tags}",
        "Photos from the market this morning, life goes on {tags}",
        "Reading about the history of the Ibrahimi Mosque tonight {tags}",
        "Webinar on documentation methods for field researchers next week {tags}",
        "Checkpoint closures again, hours of waiting for students {tags}",
    ),
    "ar": (
        "تقرير جديد عن الأوضاع في البلدة القديمة {tags}",
        "صور من سوق المدينة صباح اليوم {tags}",
        "إغلاق الحواجز مرة أخرى وساعات من الانتظار للطلاب {tags}",
    ),
    "fr": ("Nouveau rapport sur la situation dans la vieille ville {tags}", "Photos du marché ce matin {tags}"),
    "es": ("Nuevo informe sobre la situación en la ciudad vieja {tags}", "Fotos del mercado esta mañana {tags}"),
    "de": ("Neuer Bericht zur Lage in der Altstadt {tags}",),
    "it": ("Nuovo rapporto sulla situazione nella città vecchia {tags}",),
    "tr": ("Eski şehirdeki durumla ilgili yeni rapor {tags}",),
    "nl": ("Nieuw rapport over de situatie in de oude stad {tags}",),
    "und": ("{tags}",),
}

# Hashtags that travel with the campaign tags; noise posts carry only these.
CO_HASHTAGS: tuple[str, ...] = (
    "Hebron",
    "Palestine",
    "HumanRights",
    "FreeIssaAmro",
    "EndOccupation",
    "Justice",
    "HRDs",
    "Solidarity",
    "WestBank",
    "Nonviolence",
)
CO_HASHTAGS_AR: tuple[str, ...] = ("الخليل", "فلسطين", "الحرية_لعيسى_عمرو", "حقوق_الإنسان")

# A text that real storms contain and that must survive every renderer untouched: markup and an ampersand.
HOSTILE_TEXT = "<script>alert(1)</script> Justice & dignity for every defender"
HOSTILE_DISPLAY_NAME = "<b>Bold</b> & Co"
HOSTILE_DESCRIPTION = 'Views my own & <i>not</i> my employer\'s "views"'

SOURCES: tuple[tuple[str, float], ...] = (
    ("Twitter for Android", 42.0),
    ("Twitter for iPhone", 33.0),
    ("Twitter Web App", 20.0),
    ("TweetDeck", 3.0),
    ("Twitter for iPad", 2.0),
)

# (latin form for handles, display form) per language; Arabic display names are written in Arabic.
FIRST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": tuple(
        (n, n)
        for n in (
            "Sarah", "James", "Emily", "Michael", "Hannah", "David", "Olivia", "Daniel", "Grace", "Thomas",
            "Rachel", "Samuel", "Chloe", "Nathan", "Megan", "Aaron", "Zoe", "Liam", "Ruth", "Owen",
        )
    ),
    "ar": (
        ("Mohammed", "محمد"), ("Ahmad", "أحمد"), ("Fatima", "فاطمة"), ("Layla", "ليلى"), ("Omar", "عمر"),
        ("Yousef", "يوسف"), ("Nour", "نور"), ("Huda", "هدى"), ("Khaled", "خالد"), ("Rania", "رانيا"),
        ("Sami", "سامي"), ("Mariam", "مريم"), ("Ali", "علي"), ("Hana", "هناء"), ("Tariq", "طارق"),
        ("Salma", "سلمى"), ("Bassam", "بسام"), ("Dina", "دينا"),
    ),
    "fr": tuple((n, n) for n in ("Camille", "Julien", "Élodie", "Mathieu", "Inès", "Hugo", "Léa", "Antoine")),
    "es": tuple((n, n) for n in ("Lucía", "Javier", "Carmen", "Diego", "Marta", "Pablo", "Sofía", "Andrés")),
    "de": tuple((n, n) for n in ("Lena", "Jonas", "Miriam", "Felix", "Anna", "Lukas", "Katrin", "Tobias")),
    "it": tuple((n, n) for n in ("Giulia", "Marco", "Chiara", "Luca", "Francesca", "Matteo", "Elena")),
    "tr": tuple((n, n) for n in ("Elif", "Mehmet", "Zeynep", "Emre", "Ayşe", "Burak", "Deniz")),
    "nl": tuple((n, n) for n in ("Sanne", "Daan", "Femke", "Bram", "Lotte", "Joris", "Eva")),
}
LAST_NAMES: dict[str, tuple[tuple[str, str], ...]] = {
    "en": tuple(
        (n, n)
        for n in ("Miller", "Khan", "Walsh", "Brooks", "Patel", "Reid", "Hughes", "Carter", "Doyle", "Fisher")
    ),
    "ar": (
        ("Haddad", "حداد"), ("Khalil", "خليل"), ("Nasser", "ناصر"), ("Saleh", "صالح"), ("Abbas", "عباس"),
        ("Darwish", "درويش"), ("Jaber", "جابر"), ("Qasem", "قاسم"), ("Mansour", "منصور"), ("Hamdan", "حمدان"),
    ),
    "fr": tuple((n, n) for n in ("Martin", "Bernard", "Lefèvre", "Moreau", "Girard", "Roux", "Fontaine")),
    "es": tuple((n, n) for n in ("García", "Fernández", "López", "Martínez", "Ruiz", "Navarro", "Ortega")),
    "de": tuple((n, n) for n in ("Müller", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann")),
    "it": tuple((n, n) for n in ("Rossi", "Bianchi", "Romano", "Colombo", "Ricci", "Greco")),
    "tr": tuple((n, n) for n in ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Aydın")),
    "nl": tuple((n, n) for n in ("de Vries", "Jansen", "Bakker", "Visser", "Smit", "Mulder")),
}

BIOS: dict[str, tuple[str, ...]] = {
    "en": (
        "Human rights | Palestine | views my own",
        "Journalist & photographer. DMs open.",
        "Teacher, gardener, stubborn optimist",
        "Researcher on civic space and protest",
        "Activist. Nonviolence works.",
    ),
    "ar": ("ناشط في مجال حقوق الإنسان", "صحفية ومصورة", "معلم من الخليل", "الحرية لفلسطين"),
    "fr": ("Militante des droits humains", "Journaliste indépendant", "Prof & lectrice"),
    "es": ("Defensora de derechos humanos", "Periodista independiente", "Profe y activista"),
    "de": ("Menschenrechte & Frieden", "Freier Journalist", "Lehrerin, Aktivistin"),
    "it": ("Attivista per i diritti umani", "Giornalista freelance"),
    "tr": ("İnsan hakları aktivisti", "Bağımsız gazeteci"),
    "nl": ("Mensenrechten & vrede", "Freelance journalist"),
}

PLACES: dict[str, tuple[str, ...]] = {
    "en": ("London, England", "New York, USA", "Dublin, Ireland", "Toronto, Canada", "Sydney, Australia"),
    "ar": ("الخليل، فلسطين", "Ramallah, Palestine", "Amman, Jordan", "بيروت، لبنان", "Hebron"),
    "fr": ("Paris, France", "Bruxelles, Belgique", "Montréal, Québec"),
    "es": ("Madrid, España", "Barcelona", "Ciudad de México"),
    "de": ("Berlin, Deutschland", "Wien", "Zürich"),
    "it": ("Roma, Italia", "Milano"),
    "tr": ("İstanbul, Türkiye", "Ankara"),
    "nl": ("Amsterdam, Nederland", "Utrecht"),
}

NAME_DECORATIONS: tuple[str, ...] = (" 🇵🇸", " ✊", " 🕊️", " 🌍")

# --- storm intelligence (intel.py) --------------------------------------------------------------------------

# The campaign toolkit's text, which supporters paste (`StormSpec.toolkit_share`), per language (others paste the
# English one). Pasters vary it a little; each variation stays near-identical to the toolkit (Jaccard >= 0.8 over
# word pairs): (weight, words added before, (word replaced, replacement) or None, words added after).
TOOLKIT_TEXTS: dict[str, str] = {
    "en": "Issa Amro is a peaceful human rights defender who faces a military court tomorrow for documenting "
          "abuses in Hebron. Drop all charges and end the judicial harassment now! {tags}",
    "ar": "عيسى عمرو مدافع سلمي عن حقوق الإنسان يمثل غدا أمام محكمة عسكرية لأنه وثق الانتهاكات في الخليل. "
          "أسقطوا جميع التهم وأوقفوا الملاحقة القضائية الآن {tags}",
    "fr": "Issa Amro est un défenseur pacifique des droits humains jugé demain par un tribunal militaire pour avoir "
          "documenté les abus à Hébron. Abandonnez toutes les poursuites maintenant ! {tags}",
    "es": "Issa Amro es un defensor pacífico de los derechos humanos juzgado mañana por un tribunal militar por "
          "documentar abusos en Hebrón. ¡Retiren todos los cargos y acaben con el acoso judicial ya! {tags}",
}
TOOLKIT_VARIATIONS: tuple[tuple[float, str, tuple[str, str] | None, str], ...] = (
    (50.0, "", None, ""),
    (15.0, "", None, " Please share."),
    (10.0, "URGENT: ", None, ""),
    (15.0, "", ("peaceful", "nonviolent"), ""),
    (10.0, "", None, " 🙏"),
)

# A supporter's own sentence before a template (`StormSpec.personal_texts`): opener, middle and closer, so that
# supporters rarely write the same words.
PERSONAL_PARTS: tuple[tuple[str, ...], ...] = (
    ("Just signed the petition.", "Woke up thinking about this.", "Shared this with my class today.",
     "My union stands with him.", "Writing from Dublin tonight.", "Second year I join this storm.",
     "Told my grandmother about him.", "Our choir is posting together.", "Long day, but this matters.",
     "Met him once in Hebron.", "Sending strength from Glasgow.", "Calling my MP tomorrow morning.",
     "Read his story this week.", "Lit a candle at noon.", "Our reading group discussed it.",
     "Posting between two shifts.", "My daughter asked me why.", "Heard him speak in 2019.",
     "Volunteered with his group once.", "Still angry after reading it."),
    ("Nobody should be jailed for filming soldiers.", "Documenting abuse is journalism.",
     "Courts must not punish peaceful protest.", "The evidence against him is thin.",
     "Military courts convict almost everyone.", "Solidarity crosses every border.",
     "Silence only helps the occupiers.", "He trained hundreds in nonviolence.", "Cameras are not weapons.",
     "Human rights need defenders.", "His neighbours deserve safety too.", "Justice delayed is justice denied.",
     "Protest is a right, not a privilege.", "The world owes him attention.", "Fear must not win here.",
     "Accountability starts with listening.", "Peaceful resistance deserves protection.",
     "Every voice adds pressure.", "History will remember this trial.", "Law should protect, not silence."),
    ("Keep going.", "Pass it on.", "Spread the word.", "Stay loud.", "Do not look away.", "We are many.",
     "Share widely.", "Thank you all.", "Onwards.", "Never again silence.", "Hope is a discipline.",
     "Together we win.", "Speak up.", "Count me in.", "One more voice.", "Raise it.", "Eyes on Hebron.",
     "All of us.", "Be brave.", "No retreat."),
)

# The counter wave (`StormSpec.counter_hashtags`): what the opponents post, `{tags}` being their hashtags (and, on
# hijacking posts, a campaign hashtag too).
COUNTER_TEMPLATES: tuple[str, ...] = (
    "Stop spreading lies about a fair legal process. {tags}",
    "This campaign is a foreign smear operation. Read the facts before you share. {tags}",
    "The courts decide, not hashtag mobs. {tags}",
    "Incitement is not activism. {tags}",
    "Do your research: this storm is paid propaganda. {tags}",
    "Law and order protects everyone in Hebron. {tags}",
)
COUNTER_NAMES: tuple[str, ...] = ("Observer", "Citizen", "Realist", "Watchman", "Patriot", "Sentinel", "Analyst",
                                  "Voice", "Defender", "Insider")

# What the target who responds (`StormSpec.target_responses`) posts: an unrelated statement first, then a reply to a
# campaign post on X, a post on Mastodon and a quote of a campaign post on Bluesky.
TARGET_UNRELATED = "Today I met young climate leaders from across the Pacific. Their energy gives me hope."
TARGET_REPLY = "We are following the case of Issa Amro closely and have raised it with the authorities."
TARGET_MASTODON = "Human rights defenders must be able to work without fear. The case of Issa Amro is on our agenda."
TARGET_QUOTE = "Important. We are watching this trial."
