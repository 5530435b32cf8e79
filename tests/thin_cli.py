#!/usr/bin/python3
"""The smki command stays thin (issue 10, section 2): every CLI function is short, every
command parses with the one declarative parser (cli_parse, no getopt), and no CLI file
includes a crypto, store or XML library: such work belongs to the library modules.
Usage: thin_cli.py TOOLS_DIR [MAX_LINES]. Prints each violation; exit 1 if any."""
import pathlib
import re
import sys

FORBIDDEN_INCLUDES = re.compile(r'#\s*include\s*[<"](openssl/|lmdb\.h|libpq-fe\.h|libxml/|xmlsec/|getopt\.h)')


def functions(lines):
    """(name, first line, length) of each function: a '{' alone in column 0 after its
    signature, up to the '}' alone in column 0."""
    i = 0
    while i < len(lines):
        if lines[i] == '{' and i > 0:
            start = i - 1
            while start > 0 and lines[start][:1] in (' ', '\t'):
                start -= 1
            end = i + 1
            while end < len(lines) and lines[end] != '}':
                end += 1
            m = re.search(r'(\w+)\s*\(', lines[start])
            if m:
                yield m.group(1), start + 1, end - start + 1
            i = end
        i += 1


def main():
    tools = pathlib.Path(sys.argv[1])
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    bad = []
    files = sorted(tools.glob('*.c')) + sorted(tools.glob('*.h'))
    if not files:
        print(f'thin_cli: no sources in {tools}')
        return 1
    for f in files:
        text = f.read_text()
        lines = text.split('\n')
        for n, line in enumerate(lines, 1):
            if FORBIDDEN_INCLUDES.search(line):
                bad.append(f'{f.name}:{n}: {line.strip()}: the CLI parses, calls the library and prints')
            if 'getopt_long' in line:
                bad.append(f'{f.name}:{n}: getopt_long: commands parse with cli_parse (cli.h)')
        for name, first, length in functions(lines):
            if length > limit:
                bad.append(f'{f.name}:{first}: {name} is {length} lines (at most {limit}): split calling from printing')
    for b in bad:
        print(b)
    print(f'thin_cli: {len(files)} files, {len(bad)} violation(s)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
