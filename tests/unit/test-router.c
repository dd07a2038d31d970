/* Routing decisions: where a call goes, which forwarding targets are ours,
 * and when forwarding must stop (loops, hop limit). */
#include <glib/gstdio.h>

#include "td-router.h"

#define CONFIG \
  "[sip]\nlisten = 127.0.0.1:5060\ndomain = pbx.test\n[store]\npath = x.db\n" \
  "[user alice]\npassword = a\n[user bob]\npassword = b\n[user carol]\npassword = c\n"

typedef struct {
  TdConfig *config;
  TdStore *store;
  TdStoreBatch *batch;
  TdLocation *location;
  char *dir;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *db = NULL;
  GPtrArray *changes = g_ptr_array_new_with_free_func ((GDestroyNotify) td_binding_free);
  TdBinding b = { .aor = "bob", .contact = "sip:bob@127.0.0.1:5062", .call_id = "c1",
                  .cseq = 1, .expires_at = 2000, .q = 1000, .source = "udp/127.0.0.1:5062",
                  .registered_at = 1000 };

  f->dir = g_dir_make_tmp ("test-router-XXXXXX", &error);
  g_assert_no_error (error);
  db = g_build_filename (f->dir, "router.db", NULL);
  f->config = td_config_parse (CONFIG, "router.conf", NULL, &error);
  g_assert_no_error (error);
  f->store = td_store_open (db, FALSE, &error);
  g_assert_no_error (error);
  f->batch = td_store_batch_new (f->store, 0);
  f->location = td_location_new (f->store, f->batch, 1000, &error);
  g_assert_no_error (error);
  g_ptr_array_add (changes, td_binding_copy (&b));
  td_location_update (f->location, "bob", FALSE, changes, NULL, NULL);
  td_store_batch_flush (f->batch);
  g_ptr_array_unref (changes);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_autofree char *db = g_build_filename (f->dir, "router.db", NULL);
  g_autofree char *wal = g_strconcat (db, "-wal", NULL);
  g_autofree char *shm = g_strconcat (db, "-shm", NULL);

  td_location_free (f->location);
  td_store_batch_free (f->batch);
  td_store_free (f->store);
  td_config_unref (f->config);
  g_unlink (db);
  g_unlink (wal);
  g_unlink (shm);
  g_rmdir (f->dir);
  g_free (f->dir);
}

static void
test_route (Fixture *f, gconstpointer data)
{
  g_autoptr (TdRoute) ok = td_router_route (f->config, f->location, "bob", "pbx.test", 1500);
  g_autoptr (TdRoute) by_ip = td_router_route (f->config, f->location, "bob", "127.0.0.1", 1500);
  g_autoptr (TdRoute) unknown = td_router_route (f->config, f->location, "zed", "pbx.test", 1500);
  g_autoptr (TdRoute) away = td_router_route (f->config, f->location, "carol", "pbx.test", 1500);
  g_autoptr (TdRoute) expired = td_router_route (f->config, f->location, "bob", "pbx.test", 2000);
  g_autoptr (TdRoute) foreign = td_router_route (f->config, f->location, "bob", "example.org", 1500);

  g_assert_cmpint (ok->status, ==, 0);
  g_assert_cmpuint (ok->targets->len, ==, 1);
  g_assert_cmpstr (((TdBinding *) g_ptr_array_index (ok->targets, 0))->contact, ==,
                   "sip:bob@127.0.0.1:5062");
  g_assert_cmpint (by_ip->status, ==, 0);
  g_assert_cmpint (unknown->status, ==, 404);
  g_assert_cmpint (away->status, ==, 480);           /* a user, not registered */
  g_assert_cmpint (expired->status, ==, 480);        /* the binding's time is up */
  g_assert_cmpint (foreign->status, ==, 404);
  g_assert_cmpstr (away->callee, ==, "carol");
}

/* sips: keeps only what is reached over TLS: registered over it, or named
 * so by the Contact. */
static void
test_secure (Fixture *f, gconstpointer data)
{
  const TdBinding tls = { .contact = "sip:a@127.0.0.1:9;transport=tls", .source = "tls/127.0.0.1:4000" };
  const TdBinding sips = { .contact = "SIPS:a@127.0.0.1", .source = "tcp/127.0.0.1:4001" };
  const TdBinding flow = { .contact = "sip:a@127.0.0.1:5062", .source = "tls/127.0.0.1:4002" };
  const TdBinding udp = { .contact = "sip:a@127.0.0.1:5062", .source = "udp/127.0.0.1:5062" };
  const TdBinding tcp = { .contact = "sip:a@127.0.0.1:5062;transport=tcp", .source = "tcp/127.0.0.1:4003" };
  g_autoptr (TdRoute) plain = td_router_route (f->config, f->location, "bob", "pbx.test", 1500);
  g_autoptr (TdRoute) mixed = td_router_route (f->config, f->location, "bob", "pbx.test", 1500);

  g_assert_true (td_binding_is_secure (&tls));
  g_assert_true (td_binding_is_secure (&sips));
  g_assert_true (td_binding_is_secure (&flow));
  g_assert_false (td_binding_is_secure (&udp));
  g_assert_false (td_binding_is_secure (&tcp));
  /* bob is registered over UDP only: nothing for a sips: call */
  td_route_keep_secure (plain);
  g_assert_cmpint (plain->status, ==, 480);
  g_assert_cmpuint (plain->targets->len, ==, 0);
  g_ptr_array_add (mixed->targets, td_binding_copy (&tls));
  g_ptr_array_add (mixed->targets, td_binding_copy (&tcp));
  td_route_keep_secure (mixed);
  g_assert_cmpint (mixed->status, ==, 0);
  g_assert_cmpuint (mixed->targets->len, ==, 1);
  g_assert_cmpstr (((TdBinding *) g_ptr_array_index (mixed->targets, 0))->source, ==,
                   "tls/127.0.0.1:4000");
}

static void
test_target_user (Fixture *f, gconstpointer data)
{
  static const struct { const char *target, *user; } cases[] = {
    { "carol", "carol" },
    { " carol ", "carol" },
    { "sip:carol@pbx.test", "carol" },
    { "<sip:carol@pbx.test>", "carol" },
    { "sip:carol@PBX.TEST;transport=udp", "carol" },
    { "sip:carol@127.0.0.1:5060", "carol" },
    { "sip:carol@example.org", NULL },     /* another domain: not routed */
    { "carol@pbx.test", NULL },            /* not a URI, not a user name */
    { "tel:+3312345", NULL },
    { "sip:pbx.test", NULL },              /* no user */
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *user = td_router_target_user (f->config, cases[i].target);
    g_test_message ("%s → %s", cases[i].target, user ? user : "(none)");
    g_assert_cmpstr (user, ==, cases[i].user);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/router/route", Fixture, NULL, fixture_set_up, test_route, fixture_tear_down);
  g_test_add ("/router/secure", Fixture, NULL, fixture_set_up, test_secure, fixture_tear_down);
  g_test_add ("/router/target-user", Fixture, NULL, fixture_set_up, test_target_user,
              fixture_tear_down);
  return g_test_run ();
}
