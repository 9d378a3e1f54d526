"""Builds planted.jsonl from planted.src.txt: {KIND:value} → text keeps value, expected gets [KIND]."""
import json, re, pathlib

here = pathlib.Path(__file__).parent
mark = re.compile(r"\{([A-Z]+):([^{}]*)\}")
out = []
for line in (here / "planted.src.txt").read_text().splitlines():
    if not line.strip() or line.startswith("#"):
        continue
    line = line.replace("\\n", "\n")
    text = mark.sub(lambda m: m.group(2), line)
    expected = mark.sub(lambda m: "[" + m.group(1) + "]", line)
    out.append(json.dumps({"text": text, "expected": expected}, ensure_ascii=False))
(here / "planted.jsonl").write_text("\n".join(out) + "\n")
print(len(out), "lines")
