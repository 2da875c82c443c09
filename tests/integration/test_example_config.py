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


def test_invalid_module_option_values_are_refused_with_their_line():
    """Values a module declares invalid (its choices, its check) are found
    by --check-config, which starts nothing, not first when it loads."""
    for good, bad, why in (
            ('    default: always', '    default: sometimes',
             "modules.mam: key 'default' must be one of always, never, roster"),
            ('    transports: udp,tcp', '    transports: udp,sctp',
             "modules.extdisco: key 'transports' names a transport other than udp and tcp"),
            ('    transports: udp,tcp', '    transports: " , "',
             "modules.extdisco: key 'transports' must name at least one of udp, tcp"),
            ('    abuse_addresses: ""', '    abuse_addresses: "xmpp:abuse@example.org, '
             'abuse@example.org"', "modules.disco: key 'abuse_addresses' must list URIs")):
        text = example_with_build_modules()
        assert good in text.splitlines(), good
        text = text.replace(good, bad, 1)
        line = text.splitlines().index(bad) + 1
        result = check_config(text)
        assert result.returncode == 1, (bad, result.stdout + result.stderr)
        assert ':%d: %s' % (line, why) in result.stderr, (bad, result.stderr)
    # URIs of any scheme are fine
    text = example_with_build_modules().replace(
        '    abuse_addresses: ""',
        '    abuse_addresses: "mailto:abuse@example.org, xmpp:abuse@example.org?message, '
        'https://example.org/abuse"', 1)
    result = check_config(text)
    assert result.returncode == 0, result.stdout + result.stderr


if __name__ == '__main__':
    harness.run([test_example_config_is_valid_with_every_module,
                 test_wrong_module_option_is_refused_with_its_line,
                 test_invalid_module_option_values_are_refused_with_their_line])
