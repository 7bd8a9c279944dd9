/*
 * handlers.h - the routes of the server contract and their handlers.
 *
 *   GET|HEAD /plaintext     text/plain "Hello, World!"
 *   GET|HEAD /json          {"message":"Hello, World!"}
 *   GET|HEAD /static/<path> a file under --root, or 304 / 412 (conditional.h)
 *   POST     /echo          the request body back
 *   GET|HEAD /delay/<ms>    answers after ms (0..60000) without blocking others
 *   GET|HEAD /stats         JSON counters
 *   OPTIONS  *              200, with every method some route takes in Allow
 *
 * A request is handled in two steps, because its head and its body may arrive
 * in different reads: handlers_begin() runs when the head is parsed (routing,
 * opening a file, validating arguments) and keeps what it learned in c->req;
 * handlers_finish() runs once the body is in and queues the response.
 */
#ifndef HANDLERS_H
#define HANDLERS_H

#include "conn.h"
#include "http.h"

struct server;

enum { DELAY_MAX_MS = 60000 };

/* Builds the router. Returns 0 or -ENOMEM. */
int handlers_init(struct server *srv);
void handlers_cleanup(struct server *srv);

/* Routes a parsed head. Returns 0, or the HTTP status to answer with once
 * the body (if any) has been read. */
int handlers_begin(struct conn *c, const struct http_request *r);

/* Queues the response (or calls conn_delay()). */
void handlers_finish(struct conn *c);

/* Queues the response of a /delay whose time has come. */
void handlers_delayed(struct conn *c);

#endif
