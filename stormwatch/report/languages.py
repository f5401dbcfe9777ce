"""Languages as the report names them: `English (en)`, from the codes the platforms tag posts with
(`metrics.languages` folds them to ISO 639 codes). A code without a name here is shown as it is."""

from __future__ import annotations

from ..metrics import LanguageCount

# English names of the ISO 639-1 languages (and a few 639-3 ones platforms use), for the report's readers.
LANGUAGE_NAMES = {
    "af": "Afrikaans", "am": "Amharic", "ar": "Arabic", "az": "Azerbaijani", "be": "Belarusian", "bg": "Bulgarian",
    "bn": "Bengali", "bs": "Bosnian", "ca": "Catalan", "ckb": "Central Kurdish", "cs": "Czech", "cy": "Welsh",
    "da": "Danish", "de": "German", "dv": "Dhivehi", "el": "Greek", "en": "English", "eo": "Esperanto",
    "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fil": "Filipino",
    "fr": "French", "ga": "Irish", "gl": "Galician", "gu": "Gujarati", "ha": "Hausa", "he": "Hebrew", "hi": "Hindi",
    "hr": "Croatian", "ht": "Haitian Creole", "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian",
    "is": "Icelandic", "it": "Italian", "ja": "Japanese", "jv": "Javanese", "ka": "Georgian", "kk": "Kazakh",
    "km": "Khmer", "kn": "Kannada", "ko": "Korean", "ku": "Kurdish", "ky": "Kyrgyz", "lo": "Lao", "lt": "Lithuanian",
    "lv": "Latvian", "mk": "Macedonian", "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi", "ms": "Malay",
    "mt": "Maltese", "my": "Burmese", "nb": "Norwegian Bokmål", "ne": "Nepali", "nl": "Dutch",
    "nn": "Norwegian Nynorsk", "no": "Norwegian", "or": "Odia", "pa": "Punjabi", "pl": "Polish", "ps": "Pashto",
    "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sd": "Sindhi", "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian",
    "so": "Somali", "sq": "Albanian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "te": "Telugu",
    "tg": "Tajik", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "ug": "Uyghur", "uk": "Ukrainian", "ur": "Urdu",
    "uz": "Uzbek", "vi": "Vietnamese", "yi": "Yiddish", "yo": "Yoruba", "zh": "Chinese", "zu": "Zulu",
}
LANGUAGES_SHOWN = 8  # rows of the report's languages table before "other languages"
NOT_STATED = "Not stated"


def language_name(code: str | None) -> str:
    """`English` for `en`; a code without a known name as it is; `Not stated` for None."""
    if code is None:
        return NOT_STATED
    return LANGUAGE_NAMES.get(code, code)


def shown_languages(counts: tuple[LanguageCount, ...]) -> tuple[list[LanguageCount], list[LanguageCount],
                                                                 LanguageCount | None]:
    """The languages the table shows by name, the rest (one "other languages" row) and the posts without one."""
    stated = [count for count in counts if count.code is not None]
    unstated = next((count for count in counts if count.code is None), None)
    if len(stated) <= LANGUAGES_SHOWN + 1:  # a row "1 other language" would take the room of its own row
        return stated, [], unstated
    return stated[:LANGUAGES_SHOWN], stated[LANGUAGES_SHOWN:], unstated
