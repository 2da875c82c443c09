#!/usr/bin/env python3
"""test_federation_ejabberd.py - vestnik federating with a real ejabberd.

ejabberd 23.01 (the Debian package), as a node of its own, serves
ejabberd.test with a chat room service, conference.ejabberd.test; vestnik
serves vestnik.test; each on a loopback address of its own. Both
authenticate each other's streams with dialback, since the certificates are
self-signed. A user on each side adds the other, sees the other's presence,
chats both ways and pings across, and the vestnik user joins a room on
ejabberd and talks in it. Skipped when ejabberd is not installed; see
peers.py for how the peer is run.
"""

import federation
import peers

if __name__ == '__main__':
    fed = federation.Federation(peers.Ejabberd)
    fed.run([fed.test_peer_serves_its_own_clients,
             fed.test_subscription_both_ways,
             fed.test_presence_both_ways,
             fed.test_chat_both_ways,
             fed.test_ping_across,
             fed.test_muc_on_the_peer_joined_from_vestnik])
