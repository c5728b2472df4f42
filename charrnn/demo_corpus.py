"""Write an English corpus every machine has offline: the text of Python's bundled documentation topics.

    python -m charrnn.demo_corpus demo_out/charrnn/data/input.txt
"""
import os
import re
import sys


def python_docs_text() -> str:
    """The prose of the `help()` pages of the Python reference (~0.4 MB of English); tables are dropped."""
    from pydoc_data.topics import topics
    lines = []
    for key in sorted(topics):
        for line in topics[key].splitlines():
            if line.lstrip().startswith(("|", "+-", "+=", "===", "---")):
                continue
            lines.append(re.sub(r"\s{3,}", "  ", line.rstrip()))
        lines.append("")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def main(path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = python_docs_text()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {len(text):,} characters of Python documentation to {path}")


if __name__ == "__main__":
    if len(sys.argv) > 2 or sys.argv[1:2] and sys.argv[1].startswith("-"):
        sys.exit("usage: python -m charrnn.demo_corpus [OUT.txt]  (default: data/pydocs/input.txt)")
    main(sys.argv[1] if len(sys.argv) > 1 else "data/pydocs/input.txt")
