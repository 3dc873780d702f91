"""The write-up draft and its Markdown export escape user text: rendered by a CommonMark reader (markdown-it-py,
tables on), no forged link or image, no raw HTML, no heading or table row a title or note smuggled in."""

import re

from fastapi.testclient import TestClient
from markdown_it import MarkdownIt

LINK = "[Open incident #1](javascript:alert(1)) ![pixel](https://evil.example/t.png) <https://evil.example>"
HTML = "<img src=x onerror=alert(1)><script>alert(2)</script>"
BREAKOUT = "a | b |\n# Forged heading\n1. forged list\n> forged quote"
EVIL = f"{LINK} {HTML} {BREAKOUT}"


def test_user_text_in_the_markdown_export_stays_text(client: TestClient) -> None:
    filed = client.post("/incidents", json={"title": EVIL[:300], "author": LINK, "summary": EVIL, "impact": EVIL,
                                            "owner": "<b>owner</b> | x"})
    assert filed.status_code == 201, filed.text
    iid = filed.json()["id"]
    assert client.post(f"/incidents/{iid}/notes", json={"author": "ana", "text": EVIL}).status_code == 201
    assert client.post(f"/incidents/{iid}/action-items", json={"author": "ana", "title": EVIL,
                                                               "owner": "[x](https://evil.example)"}).status_code == 201
    exported = client.get(f"/incidents/{iid}/export", params={"format": "markdown"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/markdown")
    markdown = exported.text
    html = MarkdownIt("commonmark").enable("table").render(markdown)  # raw HTML on: it would pass straight through

    assert "<a " not in html and "<img" not in html and "<script" not in html and "onerror=alert" not in html.replace(
        "&lt;img src=x onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html  # shown as text
    assert "[Open incident #1](javascript:alert(1))" in html  # the link text, literally
    assert re.search(r"<h\d>Forged heading", html) is None  # inside the title's heading, as text, at most
    assert "<blockquote>" not in html and "<ol>" not in html
    # The action items table keeps its four columns: the title's pipes did not add cells.
    table = html.split("<th>Action</th>")[1].split("</table>")[0]
    row = table.split("<tbody>")[1].split("</tr>")[0]
    assert row.count("<td") == 4, row
    # A person's own saved write-up is theirs, exported as written (the page shows it escaped).
    assert client.put(f"/incidents/{iid}/writeup", json={"author": "ana", "markdown": "# Mine\n[a](https://b.c)",
                                                         "base_revision": 0}).status_code == 200
    assert client.get(f"/incidents/{iid}/export", params={"format": "markdown"}).text == "# Mine\n[a](https://b.c)"
