#!/usr/bin/env python3
"""test_restart.py - accounts survive kill -9, sessions survive SIGHUP.

An account added through the running server must be durable the moment
vestnikctl reports success; a reload must not drop logged-in clients.
"""

import asyncio

import harness

PASSWORD = 'durable password'
DAVE = 'dave@' + harness.DOMAIN
ERIN = 'erin@' + harness.DOMAIN

server = harness.Server()


async def test_account_survives_kill_9():
    server.adduser(DAVE, PASSWORD)
    server.kill9()
    server.start()
    client = await harness.login(server, DAVE + '/back', PASSWORD)
    await client.ping()
    await client.close()


async def test_account_added_to_a_stopped_server_is_there_after_start():
    server.stop()
    server.adduser(ERIN, PASSWORD)
    server.start()
    client = await harness.login(server, ERIN + '/new', PASSWORD)
    await client.ping()
    await client.close()


async def test_sighup_reload_keeps_sessions():
    client = await harness.login(server, DAVE + '/stay', PASSWORD)
    await client.ping()
    server.reload()
    # a fresh login after the reload proves it was processed
    await asyncio.sleep(0.5)
    server.assert_running()
    other = await harness.login(server, ERIN + '/after', PASSWORD)
    await other.ping()
    assert not client.disconnected_event.is_set(), 'reload dropped the session: %s' % (
        client.stream_errors)
    await client.ping()
    other.send_message(mto=DAVE + '/stay', mbody='after reload')
    msg = await asyncio.wait_for(client.messages.get(), 5)
    assert msg['body'] == 'after reload' and msg['from'] == ERIN + '/after', msg
    assert 'reload' in server.log_text().lower(), 'no reload in the log'
    await other.close()
    await client.close()


if __name__ == '__main__':
    harness.run([test_account_survives_kill_9,
                 test_account_added_to_a_stopped_server_is_there_after_start,
                 test_sighup_reload_keeps_sessions],
                server=server)
