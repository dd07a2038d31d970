/* keyguard: LD_PRELOAD into tandem to check that every pthread key deleted
 * is deleted by the library that created it. Debian 12's Sofia-SIP deletes
 * key 0 at exit when it never created its own key (b2bua/main.c), and key 0
 * is GLib's; a GLib thread still running then aborts, now and then. The
 * abort is rare, the foreign delete is certain: it is what this catches.
 * A foreign delete prints "keyguard: ..." on stderr and exits 97.
 * A delete that returns into libc or the dynamic loader is not judged: a
 * library destructor that ends in a tail call to pthread_key_delete (libsrt,
 * linked by GStreamer's libav plugin; libgomp) returns straight into exit()
 * or _dl_fini, and the library behind it cannot be told here. Sofia's
 * delete is a call from its own code, which is what counts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_KEYS 1024

typedef int (*CreateFn) (pthread_key_t *, void (*) (void *));
typedef int (*DeleteFn) (pthread_key_t);

/* The creating object's base address per key; NULL: not created (or freed). */
static void *creator[MAX_KEYS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static const char *
object_name (void *base, void *addr)
{
  Dl_info info;
  if (dladdr (base ? base : addr, &info) && info.dli_fname)
    return info.dli_fname;
  return "?";
}

static void *
object_base (void *addr)
{
  Dl_info info;
  return dladdr (addr, &info) ? info.dli_fbase : NULL;
}

static int
from_exit_machinery (void *base)
{
  Dl_info info;
  return base && dladdr (base, &info) && info.dli_fname &&
         (strstr (info.dli_fname, "/libc.so") || strstr (info.dli_fname, "/ld-linux"));
}

int
pthread_key_create (pthread_key_t *key, void (*destructor) (void *))
{
  static CreateFn next;
  void *caller = __builtin_return_address (0);
  if (!next)
    next = (CreateFn) dlsym (RTLD_NEXT, "pthread_key_create");
  int ret = next (key, destructor);
  if (ret == 0 && *key < MAX_KEYS) {
    pthread_mutex_lock (&lock);
    creator[*key] = object_base (caller);
    pthread_mutex_unlock (&lock);
  }
  return ret;
}

int
pthread_key_delete (pthread_key_t key)
{
  static DeleteFn next;
  void *caller = __builtin_return_address (0);
  void *deleter = object_base (caller);
  if (!next)
    next = (DeleteFn) dlsym (RTLD_NEXT, "pthread_key_delete");
  if (key < MAX_KEYS) {
    pthread_mutex_lock (&lock);
    void *owner = creator[key];
    creator[key] = NULL;
    pthread_mutex_unlock (&lock);
    if (owner != deleter && !from_exit_machinery (deleter)) {
      char line[1024];
      int n = snprintf (line, sizeof line, "keyguard: %s deleted key %u, created by %s\n",
                        object_name (deleter, caller), (unsigned) key,
                        owner ? object_name (owner, NULL) : "nobody");
      if (n > 0)
        (void) !write (2, line, (size_t) n < sizeof line ? (size_t) n : sizeof line - 1);
      _exit (97);
    }
  }
  return next (key);
}
