#!/usr/bin/env python3
"""Lists the functions of the C++ sources that are longer than a limit (80 lines by default).

The house rule (CONTRIBUTING.md): a function over 80 lines is split, or the comment right above
it has a line starting "Long:" that says why it is better in one piece. This script finds the
long ones and says which have no such comment; it exits 1 if there is any.

    tools/long-functions.py                 # src/, tests excluded, limit 80
    tools/long-functions.py --all src/agent # every long function, explained or not
    tools/long-functions.py --limit 60 src

A heuristic, not a parser: comments, string and character literals are blanked, then braces are
counted. A brace opens a function body when the text before it (since the last ';', '{' or '}')
has a parameter list and is not a control statement, a namespace, a class or an initializer, and
the brace is not itself inside a function (lambdas and local classes belong to their function).
The length counts the lines from the function's first header line to its closing brace.
"""
import argparse
import os
import re
import sys

CONTROL = re.compile(r'^\s*(if|for|while|switch|catch|do|else|return|case|try)\b')
SCOPE = re.compile(r'\b(namespace|class|struct|union|enum)\b')


def blank_literals(text):
    """Comments, strings and chars replaced by spaces (newlines kept), raw strings included."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif c == 'R' and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == '_')):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = ')' + m.group(1) + '"'
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif c == "'" and re.search(r'\b\d[\w\']*$', text[max(0, i - 40):i]):
            out.append(' ')  # a digit separator (10'000), not a character literal
            i += 1
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            out.append(' ' * (j - i))
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def functions(path):
    """(name, first_line, last_line) of each function body in the file (1-based lines)."""
    raw = open(path, encoding='utf-8', errors='replace').read()
    text = blank_literals(raw)
    stack = []  # 'scope' (namespace, class, extern) or 'function' or 'block'
    header_start = 0  # offset just after the last ';', '{' or '}'
    found = []
    line_of = lambda off: text.count('\n', 0, off) + 1
    for i, c in enumerate(text):
        if c == ';':
            header_start = i + 1
        elif c == '{':
            header = text[header_start:i]
            kind = 'block'
            in_function = any(k == 'function' for k in stack)
            flat = ' '.join(header.split())
            if not in_function:
                scope = SCOPE.search(flat)
                if (scope and '(' not in flat[:scope.start()]) or flat.startswith('extern'):
                    kind = 'scope'  # namespace, class, enum, extern "C"
                elif '(' in flat and ')' in flat and not CONTROL.match(flat) and not flat.endswith('='):
                    kind = 'function'
                else:
                    kind = 'scope'  # an initializer at namespace or class scope
            if kind == 'function':
                # The header's first non-blank line.
                k = header_start
                while k < i and text[k].isspace():
                    k += 1
                name = re.findall(r'([~\w:]+(?:operator\s*\S+)?)\s*\(', flat)
                stack.append(('function', line_of(k), name[0] if name else flat[:40]))
            else:
                stack.append((kind, 0, ''))
            header_start = i + 1
        elif c == '}':
            if stack:
                kind, first, name = stack.pop()
                if kind == 'function':
                    found.append((name, first, line_of(i)))
            header_start = i + 1
    return raw.split('\n'), found


def explained(lines, first):
    """Whether the comment block right above line `first` has a line starting "Long:"."""
    k = first - 2
    while k >= 0 and lines[k].strip().startswith('//'):
        if re.match(r'\s*//\s*Long:', lines[k]):
            return True
        k -= 1
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('paths', nargs='*', default=['src'], help='files or folders (default src)')
    ap.add_argument('--limit', type=int, default=80, help='longest allowed without a reason')
    ap.add_argument('--all', action='store_true', help='list explained ones too')
    ap.add_argument('--tests', action='store_true', help='include *_test.cc and test support')
    args = ap.parse_args()
    files = []
    for p in args.paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, n) for n in names if n.endswith(('.cc', '.h'))]
        else:
            files.append(p)
    unexplained = 0
    for path in sorted(files):
        base = os.path.basename(path)
        if not args.tests and (base.endswith('_test.cc') or 'test_' in base or '_for_test' in base):
            continue
        lines, found = functions(path)
        for name, first, last in found:
            length = last - first + 1
            if length <= args.limit:
                continue
            ok = explained(lines, first)
            unexplained += 0 if ok else 1
            if args.all or not ok:
                print(f'{path}:{first}: {name} is {length} lines' + ('' if ok else ' (no "Long:" comment)'))
    return 1 if unexplained else 0


if __name__ == '__main__':
    sys.exit(main())
