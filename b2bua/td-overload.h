/* TdOverload: shed new work when the SIP thread falls behind.
 *
 * The lag is the age of the oldest datagram still waiting, unread, in the
 * SIP UDP socket: the kernel stamps each datagram when it arrives
 * (SO_TIMESTAMPNS), and a MSG_PEEK of the head of the queue reads that stamp
 * without taking the datagram from Sofia. It is what every message behind it
 * will wait at least, measured where the waiting happens, for one syscall.
 * (Sofia stamps a message when it reads it, so a message's own receive time
 * says nothing about the queue it sat in.)
 *
 * While the lag is at or above the threshold, new INVITEs (out of dialog)
 * and REGISTERs get 503 with Retry-After before any digest check, store
 * access or media allocation; requests within a dialog (ACK, BYE, re-INVITE,
 * UPDATE), CANCELs and responses are never shed, so calls already accepted
 * complete. Shedding stops as soon as the lag is below the threshold again. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  TD_OVERLOAD_NORMAL,
  TD_OVERLOAD_SHEDDING,
} TdOverloadState;

/* The decision alone, for a measured lag: SHEDDING while lag >= threshold,
 * NORMAL below it; threshold_us 0: never shed. */
TdOverloadState td_overload_decide (gint64 lag_us, gint64 threshold_us);

typedef struct _TdOverload TdOverload;

/* Watches the UDP socket bound to host:port in this process (Sofia's SIP
 * socket); NULL with error if there is none. */
TdOverload *td_overload_new (const char *host, guint16 port, GError **error);
void td_overload_free (TdOverload *o);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TdOverload, td_overload_free)

/* Age of the oldest unread datagram in µs; 0 when none waits. */
gint64 td_overload_lag_us (TdOverload *o);

/* Measures the lag and decides for one new INVITE or REGISTER: TRUE means
 * refuse it with 503. Logs when an overload episode starts and, once no
 * request was refused for 5 s, that it is over. */
gboolean td_overload_shed_new_work (TdOverload *o, guint threshold_ms);

G_END_DECLS
