#!/usr/bin/env python3
"""The shipped conf/vestnik.yaml: every key and every module option it
documents is accepted by `vestnikd --check-config` with the real modules,
and a broken copy is refused with the line number."""

import os
import re
import subprocess
import tempfile

import harness

EXAMPLE = os.path.join(harness.srcdir(), 'conf', 'vestnik.yaml')
DAEMON = os.path.join(harness.builddir(), 'src', 'vestnikd')
MODULES = os.path.join(harness.builddir(), 'modules', '.libs')


def example_with_build_modules():
    with open(EXAMPLE) as f:
        text = f.read()
    text, n = re.subn(r'^# module_path: .*$', 'module_path: ' + MODULES, text, flags=re.M)
    assert n == 1, 'the example no longer has a commented module_path line'
    return text


def check_config(text):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, 'vestnik.yaml')
        with open(path, 'w') as f:
            f.write(text)
        return subprocess.run([DAEMON, '--check-config', '-c', path], capture_output=True,
                              text=True, timeout=30)


def test_example_config_is_valid_with_every_module():
    result = check_config(example_with_build_modules())
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'configuration ok' in result.stdout, result.stdout


def test_wrong_module_option_is_refused_with_its_line():
    text = example_with_build_modules().replace('    show_os: false', '    show_oss: false')
    line = text.splitlines().index('    show_oss: false') + 1
    result = check_config(text)
    assert result.returncode == 1, result.stdout + result.stderr
    assert ':%d: modules.version: unknown key' % line in result.stderr, result.stderr


if __name__ == '__main__':
    harness.run([test_example_config_is_valid_with_every_module,
                 test_wrong_module_option_is_refused_with_its_line])
