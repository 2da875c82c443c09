#!/usr/bin/env python3
"""The README's quick start: exactly two set-up commands (install, build and
start; run the tests), and the first one works where sudo is not installed,
as in a fresh Debian 12 container where you are root.

The first command is expanded by a real shell that finds no sudo, and every
program it then runs must exist: on PATH, in the source tree, or where
`make install` puts the daemon. (The whole command, apt-get included, was run
in such a root shell by hand; this test keeps it true.)
"""

import os
import re
import shutil
import subprocess

import harness

README = os.path.join(harness.srcdir(), 'README.md')


def quick_start_commands():
    with open(README) as f:
        text = f.read()
    section = re.search(r'^## Quick start.*?$(.*?)^## ', text, flags=re.M | re.S)
    assert section, 'README.md has no "## Quick start" section'
    return [line[4:] for line in section.group(1).splitlines() if line.startswith('    ')]


def expand_without_sudo(segment):
    """The words sh runs for one `&&` segment on a system without sudo."""
    result = subprocess.run(['/bin/sh', '-c', 'eval "set -- $1"; printf "%s\\n" "$@"', 'sh', segment],
                            env={'PATH': '/nonexistent'}, capture_output=True, text=True,
                            timeout=10)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def installed_sbindir():
    """sbindir of the build the tests run against, as `make install` uses it."""
    with open(os.path.join(harness.builddir(), 'Makefile')) as f:
        variables = dict(re.findall(r'^(\w+) = (.*)$', f.read(), flags=re.M))
    sbindir = variables['sbindir'].replace('${exec_prefix}', variables['exec_prefix'])
    return sbindir.replace('${prefix}', variables['prefix'])


def test_two_setup_commands():
    commands = quick_start_commands()
    assert len(commands) == 2, commands
    assert commands[1] == 'make check', commands
    assert re.search(r'vestnikd -c conf/vestnik\.yaml$', commands[0]), commands[0]


def test_first_command_runs_without_sudo():
    first = quick_start_commands()[0]
    for segment in first.split(' && '):
        words = expand_without_sudo(segment)
        assert words and words[0] != 'sudo', (segment, words)
        program = words[0]
        if program.startswith('./') or program.startswith('tools/'):
            path = os.path.join(harness.srcdir(), program)
            assert os.access(path, os.X_OK), (segment, path)
        elif program.endswith('/vestnikd'):
            assert os.path.dirname(program) == installed_sbindir(), (program, segment)
        else:
            assert shutil.which(program), (segment, program)


if __name__ == '__main__':
    harness.run([test_two_setup_commands, test_first_command_runs_without_sudo])
