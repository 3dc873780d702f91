"""Escaping for user text in generated Markdown (the write-up draft and its export).

Text people or pipelines typed (titles, summaries, names, notes) must read as text wherever the Markdown is
rendered: no forged links or images, no raw HTML, no line breaks that start a heading or break a table row.
"""

import re

# Link/image brackets, HTML and autolinks, bold, code spans, table pipes, and the escape character itself
# ("_" stays: names like mean_radius are common and an underscore cannot link, embed or break anything).
_SPECIAL = re.compile(r"([\\`*\[\]<>|])")
_LINE_START = re.compile(r"^(\s*)([#>+=-])", re.MULTILINE)  # a heading, quote, list or setext line
_NUMBERED = re.compile(r"^(\s*\d+)([.)])", re.MULTILINE)  # "1." or "1)" would start a numbered list


def inline(value: object) -> str:
    """One line of text: special characters backslash-escaped, line breaks folded into spaces."""
    text = " ".join(str(value).split()) if value is not None else ""
    return _SPECIAL.sub(r"\\\1", text)


def block(value: object) -> str:
    """Paragraphs of text: lines kept, each escaped, and no line may start a heading, quote or list."""
    lines = [_SPECIAL.sub(r"\\\1", line) for line in str(value or "").splitlines()]
    return _NUMBERED.sub(r"\1\\\2", _LINE_START.sub(r"\1\\\2", "\n".join(lines)))


def code(value: object) -> str:
    """An identifier (model, feature) as a code span, whatever backticks and pipes it holds."""
    text = " ".join(str(value).split()).replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if "`" in text else f"`{text}`"
