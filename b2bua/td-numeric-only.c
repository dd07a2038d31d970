/* No name resolution on the SIP thread: Sofia's su_getaddrinfo(), numeric only.
 *
 * Sofia-SIP's transports translate every destination they send to with
 * su_getaddrinfo() -> getaddrinfo(), synchronously, on the thread that runs
 * the stack (tport_resolve() in tport.c, for each message sent on the UDP
 * primary). nta hands them host names taken from the incoming request in
 * three places (measured with strace/gdb, see bench/RESULTS.md "Garbage flood"):
 *  - a stateless 505 (bad SIP version) or 413 is answered before nta adds
 *    received= to the top Via, so it goes to the Via's sent-by host;
 *  - a 400 to a request whose Via names another transport (SIP/2.0/TCP on
 *    UDP) likewise, and over a fresh TCP connection;
 *  - every response to a request whose Via carries maddr=NAME.
 * A flood of such messages with made-up host names stalls the SIP thread in
 * A/AAAA lookups while the socket buffer overflows behind it.
 *
 * No destination tandem needs is a name at that point: responses go to the
 * source address (received=, RFC 3261 §18.2.2) and rport (RFC 3581), and new
 * requests (to registered contacts, which carry the source address) are
 * resolved by nta with Sofia's asynchronous resolver (sres, on the su_root)
 * before they reach the transport. So this definition, which the executable
 * exports and the dynamic linker binds Sofia's own calls to, lets only IP
 * literals through: a name fails at once with EAI_NONAME and nta drops that
 * one response. (maddr names a multicast group or a proxy's address; sending
 * a response to a name an unauthenticated request chose is a reflection
 * vector anyway.) Listening addresses are IP literals ([sip] listen). */
#define G_LOG_DOMAIN "tandem-sip"

#include <dlfcn.h>
#include <glib.h>
#include <netdb.h>

#include <sofia-sip/su_addrinfo.h>

#include "td-numeric-only.h"

typedef int (*GetaddrinfoFn) (char const *, char const *, su_addrinfo_t const *,
                              su_addrinfo_t **);

static GetaddrinfoFn
sofia_getaddrinfo (void)
{
  static gsize resolved = 0;
  static GetaddrinfoFn fn;

  if (g_once_init_enter (&resolved)) {
    fn = (GetaddrinfoFn) dlsym (RTLD_NEXT, "su_getaddrinfo");
    g_once_init_leave (&resolved, 1);
  }
  return fn;
}

gboolean
td_numeric_only_active (void)
{
  /* Ours must be the definition the dynamic linker hands out (the binary
   * exports it), and Sofia's the one behind it. */
  return dlsym (RTLD_DEFAULT, "su_getaddrinfo") == (void *) su_getaddrinfo &&
         sofia_getaddrinfo () != NULL;
}

int
su_getaddrinfo (char const *node, char const *service, su_addrinfo_t const *hints,
                su_addrinfo_t **res)
{
  GetaddrinfoFn next = sofia_getaddrinfo ();
  su_addrinfo_t numeric = { 0 };

  if (!next)
    return EAI_SYSTEM;
  if (hints)
    numeric = *hints;
  numeric.ai_flags |= AI_NUMERICHOST;
  if (node && !g_hostname_is_ip_address (node))
    g_debug ("not resolving \"%s\" for Sofia's transport: names are never looked up "
             "on the SIP thread", node);
  return next (node, service, &numeric, res);
}
