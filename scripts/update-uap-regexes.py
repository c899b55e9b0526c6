#!/usr/bin/env python3
"""Converts uap-core's regexes.yaml (Apache-2.0, https://github.com/ua-parser/uap-core)
into engine/data/uap-regexes.json, which the engine embeds for user-agent parsing.

Usage: scripts/update-uap-regexes.py PATH/TO/regexes.yaml
(The ua-parser crate ships a copy: ~/.cargo/registry/src/*/ua-parser-*/uap-core/regexes.yaml.)
Needs PyYAML (pip install pyyaml).
"""
import json
import pathlib
import sys

import yaml

source = pathlib.Path(sys.argv[1])
data = yaml.safe_load(source.read_text())
keep = {k: data[k] for k in ("user_agent_parsers", "os_parsers", "device_parsers")}
target = pathlib.Path(__file__).resolve().parent.parent / "engine" / "data" / "uap-regexes.json"
target.write_text(json.dumps(keep, separators=(",", ":")))
print(f"wrote {target} ({target.stat().st_size} bytes)")
