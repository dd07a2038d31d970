/* rtpengine's ng control protocol, as much as relay-bench needs to put the
 * peer's relay (rtpengine, userspace) under the same load as tandem's: per
 * call an `offer` with A's SDP and an `answer` with B's, whose answers name
 * the ports rtpengine opened facing each side; `delete` at the end.
 *
 * A message is "<cookie> <bencoded dictionary>" in one UDP datagram
 * (rtpengine's docs: ng_control_protocol). Only strings and one list are
 * written; of a reply only the "result" and "sdp" strings are read. */
#include "rtpengine-ng.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPLY_MAX 65536
#define TIMEOUT_MS 2000

struct _NgClient {
  int fd;
  guint cookie;
};

NgClient *
ng_client_new (const char *address, guint16 port, GError **error)
{
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons (port) };
  int fd;
  NgClient *ng;

  if (inet_pton (AF_INET, address, &to.sin_addr) != 1) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "not an IPv4 address: %s", address);
    return NULL;
  }
  fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect (fd, (struct sockaddr *) &to, sizeof to) < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "ng socket to %s:%u: %s",
                 address, port, g_strerror (errno));
    if (fd >= 0)
      close (fd);
    return NULL;
  }
  ng = g_new0 (NgClient, 1);
  ng->fd = fd;
  return ng;
}

void
ng_client_free (NgClient *ng)
{
  if (!ng)
    return;
  close (ng->fd);
  g_free (ng);
}

static void
put_string (GString *out, const char *s)
{
  g_string_append_printf (out, "%zu:%s", strlen (s), s);
}

static void
put_pair (GString *out, const char *key, const char *value)
{
  put_string (out, key);
  put_string (out, value);
}

/* The string value of `key` in a bencoded reply's top dictionary, or NULL.
 * Keys and string values only are walked; rtpengine's replies to these
 * commands carry lists and integers too, which are skipped. */
static const char *skip (const char *p, const char *end);

static const char *
read_string (const char *p, const char *end, const char **s, gsize *len)
{
  char *colon;
  unsigned long n = strtoul (p, &colon, 10);

  if (colon >= end || *colon != ':' || colon == p || (gsize) (end - colon - 1) < n)
    return NULL;
  *s = colon + 1;
  *len = n;
  return colon + 1 + n;
}

static const char *
skip (const char *p, const char *end)
{
  const char *s;
  gsize len;

  if (p >= end)
    return NULL;
  if (*p == 'i') {
    const char *e = memchr (p, 'e', end - p);
    return e ? e + 1 : NULL;
  }
  if (*p == 'l' || *p == 'd') {
    p++;
    while (p && p < end && *p != 'e')
      p = skip (p, end);
    return p && p < end ? p + 1 : NULL;
  }
  return read_string (p, end, &s, &len);
}

static char *
reply_string (const char *p, const char *end, const char *key)
{
  if (p >= end || *p != 'd')
    return NULL;
  p++;
  while (p && p < end && *p != 'e') {
    const char *k, *v;
    gsize klen, vlen;
    if (!(p = read_string (p, end, &k, &klen)))
      return NULL;
    if (klen == strlen (key) && memcmp (k, key, klen) == 0 && p < end && g_ascii_isdigit (*p))
      return read_string (p, end, &v, &vlen) ? g_strndup (v, vlen) : NULL;
    p = skip (p, end);
  }
  return NULL;
}

/* One command, its reply's dictionary checked for result "ok". */
static char *
transact (NgClient *ng, const GString *dict, GError **error)
{
  g_autofree char *cookie = g_strdup_printf ("rb%u", ++ng->cookie);
  g_autofree char *msg = g_strdup_printf ("%s %s", cookie, dict->str);
  g_autofree char *buf = g_malloc (REPLY_MAX);
  struct pollfd pfd = { .fd = ng->fd, .events = POLLIN };
  ssize_t n;

  if (send (ng->fd, msg, strlen (msg), 0) < 0) {
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "ng send: %s", g_strerror (errno));
    return NULL;
  }
  for (;;) {
    if (poll (&pfd, 1, TIMEOUT_MS) <= 0) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "rtpengine did not answer in %d ms",
                   TIMEOUT_MS);
      return NULL;
    }
    n = recv (ng->fd, buf, REPLY_MAX - 1, 0);
    if (n < 0) {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno), "ng recv: %s",
                   g_strerror (errno));
      return NULL;
    }
    buf[n] = '\0';
    /* a late reply to an earlier command that timed out: not ours */
    if ((gsize) n > strlen (cookie) && strncmp (buf, cookie, strlen (cookie)) == 0 &&
        buf[strlen (cookie)] == ' ')
      break;
  }
  {
    const char *body = buf + strlen (cookie) + 1, *end = buf + n;
    g_autofree char *result = reply_string (body, end, "result");
    if (g_strcmp0 (result, "ok") != 0) {
      g_autofree char *reason = reply_string (body, end, "error-reason");
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "rtpengine: %s (%s)",
                   result ? result : "no result", reason ? reason : "no reason given");
      return NULL;
    }
    return g_memdup2 (buf, n + 1);   /* whole reply; callers read from its body */
  }
}

static char *
sdp_for (guint16 port)
{
  return g_strdup_printf ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                          "t=0 0\r\nm=audio %u RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                          "a=sendrecv\r\n",
                          port);
}

/* The m=audio port of the SDP in a reply. */
static gboolean
reply_port (const char *reply, guint16 *port, GError **error)
{
  const char *body = strchr (reply, ' ');
  g_autofree char *sdp = body ? reply_string (body + 1, body + strlen (body), "sdp") : NULL;
  const char *m = sdp ? strstr (sdp, "m=audio ") : NULL;
  unsigned v;

  if (!m || sscanf (m, "m=audio %u", &v) != 1 || v == 0 || v > 65535) {
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "rtpengine's reply has no audio port");
    return FALSE;
  }
  *port = (guint16) v;
  return TRUE;
}

static gboolean
command (NgClient *ng, const char *verb, const char *call_id, guint16 phone_port, gboolean answer,
         guint16 *relay_port, GError **error)
{
  g_autoptr (GString) d = g_string_new ("d");
  g_autofree char *sdp = sdp_for (phone_port);
  g_autofree char *reply = NULL;

  put_pair (d, "command", verb);
  put_pair (d, "call-id", call_id);
  put_pair (d, "from-tag", "a");
  if (answer)
    put_pair (d, "to-tag", "b");
  put_pair (d, "sdp", sdp);
  put_pair (d, "ICE", "remove");
  /* the phones send from the ports their SDP names: no learning needed */
  put_string (d, "replace");
  g_string_append (d, "l");
  put_string (d, "origin");
  put_string (d, "session-connection");
  g_string_append (d, "e");
  g_string_append (d, "e");
  reply = transact (ng, d, error);
  return reply && reply_port (reply, relay_port, error);
}

gboolean
ng_call_new (NgClient *ng, const char *call_id, guint16 a_port, guint16 b_port, guint16 *to_a,
             guint16 *to_b, GError **error)
{
  /* The offer's reply is the SDP for B: the port facing B, where B sends.
   * The answer's is for A: the port facing A. */
  return command (ng, "offer", call_id, a_port, FALSE, to_b, error) &&
         command (ng, "answer", call_id, b_port, TRUE, to_a, error);
}

gboolean
ng_call_delete (NgClient *ng, const char *call_id, GError **error)
{
  g_autoptr (GString) d = g_string_new ("d");
  g_autofree char *reply = NULL;

  put_pair (d, "command", "delete");
  put_pair (d, "call-id", call_id);
  put_pair (d, "from-tag", "a");
  g_string_append (d, "e");
  reply = transact (ng, d, error);
  return reply != NULL;
}
