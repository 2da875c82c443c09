/*
 * botapi.h - the internal interface between the files of the Bot API.
 *
 * The Bot API serves the Telegram Bot API's methods and JSON under
 * /bot<token>/<method> on the http and https listeners, so that bots
 * written with the usual frameworks run against vestnik by changing their
 * API root. Everything runs on the loop thread.
 */
#ifndef VESTNIK_BOTAPI_H
#define VESTNIK_BOTAPI_H

#include "services.h"

#endif
