/*
 * admin_protocol.h - what vestnikctl and vestnikd say on the admin socket.
 *
 * One request per connection. The client sends a line with the number of
 * fields N, then N lines, one field each (command first, then arguments;
 * fields cannot contain a newline). The server answers "ok" or
 * "error <message>" on the first line, then any number of body lines, and
 * closes the connection.
 *
 * Commands: status; reload; adduser HOST USER PASSWORD;
 * passwd HOST USER PASSWORD; deluser HOST USER; listusers HOST.
 * Bodies: status, one line; listusers, one username (localpart) per line;
 * a failed reload, the configuration errors. Modules serve further
 * commands through the "admin/command" hook (module.h), e.g. mod_services'
 * bot add|list|remove.
 */
#ifndef VESTNIK_ADMIN_PROTOCOL_H
#define VESTNIK_ADMIN_PROTOCOL_H

#define VN_ADMIN_MAX_FIELDS 8
#define VN_ADMIN_MAX_REQUEST 4096

#endif
