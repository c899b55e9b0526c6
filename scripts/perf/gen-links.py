#!/usr/bin/env python3
"""Writes the benchmark's links: N random 7-character base62 codes, each with a
60-byte URL, as an import CSV (domain,code,url,status) and a codes file (one
code a line) for the wrk scripts.

Usage: gen-links.py N LINKS_CSV CODES_TXT [--seed S] [--domain D]

Codes are unique ignoring case: nginx's `map` matches strings case-insensitively
and refuses a config with two keys that differ only in case.
"""

import argparse
import random
import string

ALPHABET = string.ascii_letters + string.digits
URL_PREFIX = "https://www.example.com/articles/2026/"  # 38 bytes
URL_LENGTH = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("links_csv")
    parser.add_argument("codes_txt")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--domain", default="localhost")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    seen = set()
    codes = []
    while len(codes) < args.count:
        code = "".join(rng.choices(ALPHABET, k=7))
        folded = code.lower()
        if folded in seen:
            continue
        seen.add(folded)
        codes.append(code)

    tail = URL_LENGTH - len(URL_PREFIX)
    with open(args.links_csv, "w") as csv, open(args.codes_txt, "w") as txt:
        csv.write("domain,code,url,status\n")
        for code in codes:
            url = URL_PREFIX + "".join(rng.choices(ALPHABET, k=tail))
            csv.write(f"{args.domain},{code},{url},301\n")
            txt.write(code + "\n")


if __name__ == "__main__":
    main()
