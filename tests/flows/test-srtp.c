/* SRTP flows (issue 12): tandem terminates SDES-keyed SRTP on each leg, with
 * keys of its own per leg, so that SRTP and plain RTP parties call each
 * other, and what arrives at each end is the other's clear audio.
 *
 * SIPp plays the signalling (srtp-*.xml, and the plain call-*.xml); SIPp
 * cannot speak SRTP, so srtp-probe plays the media: each SRTP end sends
 * under the key its scenario put in its own a=crypto, and decrypts what
 * tandem sends it with the key of tandem's a=crypto to it, which the
 * scenario wrote to a file (NAME.crypto) as it received it. Every audio
 * check is on what arrived: payload bytes equal to the other end's (each
 * end's packets are all one FILL byte), from the relay port, with no
 * packet that failed to authenticate. Helpers: srtp-flow.h; hold music and
 * ringback: srtp-tunes.c.
 *
 * Media ports 36000-36999, apart from the other flow tests'. */
#include <stdio.h>
#include <string.h>

#include "srtp-flow.h"

/* ---- 1. SRTP caller → plain callee ------------------------------------------------------ */

/* alice offers `proto` (RTP/SAVP; or RTP/AVP with a=crypto, baresip's
 * "best effort" SDES, which srtp = optional takes as an SRTP offer) with
 * one key; bob is plain (srtp = off: with the
 * default, optional, he would be offered tandem's own lines on RTP/AVP,
 * which a plain phone ignores; the other cases' plain callees do that).
 * bob's offer is plain RTP/AVP without a line of crypto; alice is answered
 * on her proto with one line of her tag and suite and tandem's own key; audio
 * intact both ways; no key in tandem's log or store. */
static void
srtp_caller_to_plain (const char *proto)
{
  g_autoptr (FlowDaemon) d = start_tandem ("[user bob]\npassword = bob-secret\nsrtp = off\n");
  g_autofree char *ka = random_key (30);
  const char *alice_keys[] = { "proto", proto, "suite", SUITE_80, "crypto_key", ka, NULL };
  FlowParty alice = party ("alice", "srtp-uac.xml", "a"), bob = party ("bob", "call-uas.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) report = NULL, answer_lines = NULL;
  g_auto (Answered) ta = { 0 };
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  alice.keys = alice_keys;
  alice.pause_ms = "2500";
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  read_answered ("a.crypto", &ta);
  g_assert_cmpstr (ta.tag, ==, "1");
  g_assert_cmpstr (ta.suite, ==, SUITE_80);
  g_assert_cmpstr (ta.key, !=, ka);
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, ka, ta.key, 0, NULL),
                 plain_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB) };
    report = probe (eps, G_N_ELEMENTS (eps));
  }
  assert_intact (report, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (report, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");

  {
    const char *offer = flow_require_msg (b->received, "INVITE ", 0);
    g_auto (GStrv) lines = crypto_lines (offer);
    flow_assert_relay_sdp (offer, alice.rtp_port, FALSE, MEDIA_MIN, MEDIA_MAX);
    assert_proto (offer, "RTP/AVP");
    g_assert_cmpuint (g_strv_length (lines), ==, 0);
  }
  {
    const char *ok = flow_require_response (a->received, 200, "INVITE", 0);
    g_autofree char *want = g_strdup_printf ("1 " SUITE_80 " inline:%s", ta.key);
    answer_lines = crypto_lines (ok);
    assert_proto (ok, proto);
    g_assert_cmpuint (g_strv_length (answer_lines), ==, 1);
    g_assert_cmpstr (answer_lines[0], ==, want);
  }
  flow_assert_cdr (d, a, "alice", "bob", 200, "caller", NULL);
  {
    const char *keys[] = { ka, ta.key, NULL };
    assert_keys_not_kept (keys);
  }
  flow_daemon_stop (d);
}

static void
test_srtp_to_plain (void)
{
  srtp_caller_to_plain ("RTP/SAVP");
}

static void
test_best_effort_to_plain (void)
{
  srtp_caller_to_plain ("RTP/AVP");
}

/* SRTCP: alice (AES_CM_128_HMAC_SHA1_32, whose SRTCP keeps an 80-bit tag)
 * sends sender reports as SRTCP, bob plain RTCP: each gets the other's
 * reports from the relay's RTCP port, decrypted (alice) or clear (bob),
 * and nothing on that port fails. */
static void
test_srtcp (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autofree char *ka = random_key (30);
  const char *alice_keys[] = { "proto", "RTP/SAVP", "suite", "AES_CM_128_HMAC_SHA1_32",
                               "crypto_key", ka, NULL };
  FlowParty alice = party ("alice", "srtp-uac.xml", "a"), bob = party ("bob", "call-uas.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) report = NULL;
  g_auto (Answered) ta = { 0 };
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  alice.keys = alice_keys;
  alice.pause_ms = "2500";
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  read_answered ("a.crypto", &ta);
  g_assert_cmpstr (ta.suite, ==, "AES_CM_128_HMAC_SHA1_32");
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          "AES_CM_128_HMAC_SHA1_32", ka, ta.key, 0, NULL),
                 plain_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB) };
    report = probe_run (eps, G_N_ELEMENTS (eps), PACKETS, TRUE);
  }
  assert_intact (report, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (report, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);
  /* PACKETS / 10 reports each; one may be lost to latching's first moments */
  g_assert_cmpuint (rtcp_received (report, bob.rtp_port, b_relay + 1, SSRC_ALICE), >=,
                    PACKETS / 10 - 1);
  g_assert_cmpuint (rtcp_received (report, alice.rtp_port, a_relay + 1, SSRC_BOB), >=,
                    PACKETS / 10 - 1);
  g_assert_cmpuint (rtcp_failures (report, bob.rtp_port), ==, 0);
  g_assert_cmpuint (rtcp_failures (report, alice.rtp_port), ==, 0);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");
  flow_daemon_stop (d);
}

/* ---- 2. plain caller → mandatory callee ------------------------------------------------- */

/* bob wants SRTP (srtp = mandatory), alice calls him plain: bob is offered
 * RTP/SAVP with tandem's six lines (alice had none to leak), alice is
 * answered plain, audio intact both ways. */
static void
test_plain_to_mandatory (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("[user bob]\npassword = bob-secret\nsrtp = mandatory\n");
  g_autofree char *kb = random_key (30);
  g_autofree char *bob_line = g_strdup_printf ("a=crypto:1 " SUITE_80 " inline:%s", kb);
  const char *bob_keys[] = { "proto", "RTP/SAVP", NULL };
  FlowParty alice = party ("alice", "call-uac.xml", "a"), bob = party ("bob", "srtp-uas.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) report = NULL, offered = NULL, tb = NULL;
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  bob.keys = bob_keys;
  bob.answer_attr = bob_line;
  alice.pause_ms = "2500";
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  tb = flow_wait_lines_file ("b.crypto", 1);
  {
    Ep eps[] = { plain_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE),
                 srtp_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB,
                          SUITE_80, kb, tb[0], 0, NULL) };
    report = probe (eps, G_N_ELEMENTS (eps));
  }
  assert_intact (report, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (report, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");

  {
    const char *offer = flow_require_msg (b->received, "INVITE ", 0);
    assert_proto (offer, "RTP/SAVP");
    offered = assert_tandem_offer (offer);
    g_assert_cmpstr (offered[0], ==, tb[0]);   /* the key the probe decrypted with */
  }
  {
    const char *ok = flow_require_response (a->received, 200, "INVITE", 0);
    g_auto (GStrv) lines = crypto_lines (ok);
    assert_proto (ok, "RTP/AVP");
    g_assert_cmpuint (g_strv_length (lines), ==, 0);
  }
  flow_daemon_stop (d);
}

/* ---- 3. SRTP → SRTP: each leg's keys are its own ---------------------------------------- */

/* alice offers AEAD_AES_128_GCM, bob (srtp = optional, the default) is
 * offered RTP/AVP with tandem's lines and takes tag 3 (AES-256) on RTP/AVP,
 * baresip's "best effort" SDES. No key tandem offers bob is alice's, nor
 * the one it answered her with; audio intact both ways, under two suites;
 * none of the call's nine keys in tandem's log or store. */
static void
test_srtp_to_srtp (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autofree char *ka = random_key (28), *kb = random_key (46);
  g_autofree char *bob_line = g_strdup_printf ("a=crypto:3 AES_256_CM_HMAC_SHA1_80 inline:%s", kb);
  const char *alice_keys[] = { "proto", "RTP/SAVP", "suite", "AEAD_AES_128_GCM",
                               "crypto_key", ka, NULL };
  const char *bob_keys[] = { "proto", "RTP/AVP", NULL };
  FlowParty alice = party ("alice", "srtp-uac.xml", "a"), bob = party ("bob", "srtp-uas.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) report = NULL, offered = NULL, tb = NULL;
  g_autoptr (GPtrArray) all_keys = g_ptr_array_new ();
  g_auto (Answered) ta = { 0 };
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  alice.keys = alice_keys;
  alice.pause_ms = "2500";
  bob.keys = bob_keys;
  bob.answer_attr = bob_line;
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  tb = flow_wait_lines_file ("b.crypto", 3);
  read_answered ("a.crypto", &ta);
  g_assert_cmpstr (ta.tag, ==, "1");
  g_assert_cmpstr (ta.suite, ==, "AEAD_AES_128_GCM");
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          "AEAD_AES_128_GCM", ka, ta.key, 0, NULL),
                 srtp_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB,
                          "AES_256_CM_HMAC_SHA1_80", kb, tb[2], 0, NULL) };
    report = probe (eps, G_N_ELEMENTS (eps));
  }
  assert_intact (report, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (report, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");

  {
    const char *offer = flow_require_msg (b->received, "INVITE ", 0);
    assert_proto (offer, "RTP/AVP");
    offered = assert_tandem_offer (offer);
    g_assert_cmpstr (offered[2], ==, tb[2]);
    for (guint i = 0; offered[i]; i++) {
      g_assert_cmpstr (offered[i], !=, ka);
      g_assert_cmpstr (offered[i], !=, ta.key);
      g_ptr_array_add (all_keys, offered[i]);
    }
  }
  g_assert_cmpstr (ta.key, !=, ka);
  {
    const char *ok = flow_require_response (a->received, 200, "INVITE", 0);
    g_auto (GStrv) lines = crypto_lines (ok);
    g_autofree char *want = g_strdup_printf ("1 AEAD_AES_128_GCM inline:%s", ta.key);
    assert_proto (ok, "RTP/SAVP");
    g_assert_cmpuint (g_strv_length (lines), ==, 1);
    g_assert_cmpstr (lines[0], ==, want);
  }
  g_ptr_array_add (all_keys, ka);
  g_ptr_array_add (all_keys, kb);
  g_ptr_array_add (all_keys, ta.key);
  g_ptr_array_add (all_keys, NULL);
  flow_assert_cdr (d, a, "alice", "bob", 200, "caller", NULL);
  assert_keys_not_kept ((const char *const *) all_keys->pdata);
  flow_daemon_stop (d);
}

/* ---- 4. policy ---------------------------------------------------------------------------- */

/* alice's call to bob (registered, never reached) ends in `status`. */
static void
assert_refused (FlowDaemon *d, const char *scenario, const char *const *keys, int status)
{
  FlowParty alice = party ("alice", scenario, "a");
  g_autoptr (FlowRun) run = NULL;

  alice.keys = keys;
  run = flow_sipp_finish (flow_caller_start (d, &alice, "bob"), "alice");
  g_assert_cmpint (flow_caller_final (run), ==, status);
}

/* A plain offer from alice, whose srtp = mandatory: 488. */
static void
test_mandatory_caller_plain (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("[user alice]\npassword = alice-secret\n"
                                           "srtp = mandatory\n");

  flow_register (d, "bob", flow_pick_port ());
  assert_refused (d, "call-uac-fail.xml", NULL, 488);
  flow_daemon_stop (d);
}

/* An RTP/SAVP offer with a good key where [media] srtp = off: 488. */
static void
test_off_refuses_savp (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("srtp = off\n");
  g_autofree char *ka = random_key (30);
  const char *keys[] = { "proto", "RTP/SAVP", "suite", SUITE_80, "crypto_key", ka, NULL };

  flow_register (d, "bob", flow_pick_port ());
  assert_refused (d, "srtp-uac-fail.xml", keys, 488);
  flow_daemon_stop (d);
}

/* RTP/SAVP with a key that is not base64, or base64 of the wrong length
 * for its suite (46 bytes for AES_CM_128's 30): 488 each; tandem goes on
 * and carries an SRTP call after them. */
static void
test_malformed_crypto (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autofree char *long_key = random_key (46), *ka = random_key (30);
  const char *bad_b64[] = { "proto", "RTP/SAVP", "suite", SUITE_80,
                            "crypto_key", "!!!!WVQ5NWZkd3Y0aWlnbXpreWJzdWxsa2xpbm1v", NULL };
  const char *bad_len[] = { "proto", "RTP/SAVP", "suite", SUITE_80, "crypto_key", long_key, NULL };
  const char *good[] = { "proto", "RTP/SAVP", "suite", SUITE_80, "crypto_key", ka, NULL };
  FlowParty alice = party ("alice", "srtp-uac.xml", "a"), bob = party ("bob", "call-uas.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) report = NULL;
  g_auto (Answered) ta = { 0 };
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  flow_register (d, "bob", flow_pick_port ());
  assert_refused (d, "srtp-uac-fail.xml", bad_b64, 488);
  assert_refused (d, "srtp-uac-fail.xml", bad_len, 488);

  alice.keys = good;
  alice.pause_ms = "2500";
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  read_answered ("a.crypto", &ta);
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, ka, ta.key, 0, NULL),
                 plain_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB) };
    report = probe (eps, G_N_ELEMENTS (eps));
  }
  assert_intact (report, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (report, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");
  flow_daemon_stop (d);
}

/* ---- 5. re-keying by the caller ------------------------------------------------------------ */

/* alice re-INVITEs with a new key mid-call, on line `tag2` of `suite2`
 * (key of `len2` bytes): tandem answers that tag and suite, with the same
 * key of its own if the suite stays (it never re-keys on its own), else
 * with a new one for the new suite; audio under her new key arrives, and
 * once it has, audio under the old one is no longer relayed, while bob's
 * audio still reaches her under tandem's (maybe new) key. */
static void
rekey_call (guint tag2, const char *suite2, gsize len2)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autofree char *k1 = random_key (30), *k2 = random_key (len2);
  g_autofree char *line2 = g_strdup_printf ("%u %s inline:%s", tag2, suite2, k2);
  g_autofree char *tag2_text = g_strdup_printf ("%u", tag2);
  const char *alice_keys[] = { "proto", "RTP/SAVP", "crypto_key", k1, "crypto2", line2, NULL };
  FlowParty alice = party ("alice", "srtp-uac-rekey.xml", "a");
  FlowParty bob = party ("bob", "feat-uas-music.xml", "b");   /* answers the re-INVITE */
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) before = NULL, after = NULL, old_key = NULL;
  g_auto (Answered) ta = { 0 }, ta2 = { 0 };
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  alice.keys = alice_keys;
  alice.pause_ms = "4000";   /* each phase: a probe run (~1.3 s), or two */
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  read_answered ("a.crypto", &ta);
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, k1, ta.key, 1, NULL),
                 plain_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB) };
    before = probe (eps, G_N_ELEMENTS (eps));
  }
  assert_intact (before, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (before, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);

  g_assert_cmpuint (flow_wait_port_file ("a-rekeyed"), ==, a_relay);
  read_answered ("a-rekeyed.crypto", &ta2);
  g_assert_cmpstr (ta2.tag, ==, tag2_text);
  g_assert_cmpstr (ta2.suite, ==, suite2);
  if (strcmp (suite2, SUITE_80) == 0)
    g_assert_cmpstr (ta2.key, ==, ta.key);
  else
    g_assert_cmpstr (ta2.key, !=, ta.key);
  {
    /* The sequence goes on: only the key (maybe the suite) is new. */
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          suite2, k2, ta2.key, 1 + PACKETS, NULL),
                 srtp_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB, NULL, NULL, NULL,
                          1 + PACKETS, NULL) };
    after = probe (eps, G_N_ELEMENTS (eps));
  }
  assert_intact (after, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (after, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);
  {
    /* alice's old key and suite (one suite per probe endpoint: what she
     * receives, under tandem's key of the new one, is judged only when the
     * suite stayed) */
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, k1, ta.key, 1 + 2 * PACKETS, NULL),
                 srtp_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB, NULL, NULL, NULL,
                          1 + 2 * PACKETS, NULL) };
    old_key = probe (eps, G_N_ELEMENTS (eps));
  }
  g_assert_cmpuint (flow_probe_received (old_key, bob.rtp_port, 0, 0), ==, 0);
  if (strcmp (suite2, SUITE_80) == 0)
    assert_intact (old_key, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");
  /* bob's leg is plain: tandem's re-offer to him (it relays the
   * re-INVITE) carries no key, neither alice's new one nor any other. */
  {
    const char *reoffer = flow_require_msg (b->received, "INVITE ", 1);
    g_auto (GStrv) lines = crypto_lines (reoffer);
    g_assert_cmpuint (g_strv_length (lines), ==, 0);
    g_assert_null (strstr (reoffer, k2));
  }
  flow_daemon_stop (d);
}

static void
test_rekey (void)
{
  rekey_call (1, SUITE_80, 30);
}

/* The re-key also changes the suite (and the tag): a new context both ways. */
static void
test_rekey_new_suite (void)
{
  rekey_call (2, "AEAD_AES_256_GCM", 44);
}

/* alice (plain: srtp = off, her a=crypto lines ignored) re-INVITEs; bob
 * (srtp = mandatory) gets tandem's re-offer with one line: his tag and
 * suite with the key tandem gave him at first (tandem never re-keys on its
 * own), and none of alice's; audio intact both ways before and after. */
static void
test_reinvite_keeps_callee_keys (void)
{
  g_autoptr (FlowDaemon) d = start_tandem ("[user alice]\npassword = alice-secret\nsrtp = off\n"
                                           "[user bob]\npassword = bob-secret\n"
                                           "srtp = mandatory\n");
  g_autofree char *k1 = random_key (30), *k2 = random_key (30), *kb = random_key (30);
  g_autofree char *bob_line = g_strdup_printf ("a=crypto:1 " SUITE_80 " inline:%s", kb);
  g_autofree char *want = NULL;
  g_autofree char *line2 = g_strdup_printf ("1 " SUITE_80 " inline:%s", k2);
  const char *alice_keys[] = { "proto", "RTP/AVP", "crypto_key", k1, "crypto2", line2, NULL };
  const char *bob_keys[] = { "proto", "RTP/SAVP", NULL };
  FlowParty alice = party ("alice", "srtp-uac-rekey.xml", "a");
  FlowParty bob = party ("bob", "srtp-uas.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) before = NULL, after = NULL, tb = NULL, reoffer = NULL;
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  alice.keys = alice_keys;
  alice.pause_ms = "3000";
  bob.keys = bob_keys;
  bob.answer_attr = bob_line;
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  tb = flow_wait_lines_file ("b.crypto", 1);
  {
    Ep eps[] = { plain_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE),
                 srtp_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB,
                          SUITE_80, kb, tb[0], 1, NULL) };
    before = probe (eps, G_N_ELEMENTS (eps));
  }
  assert_intact (before, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (before, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);

  g_assert_cmpuint (flow_wait_port_file ("a-rekeyed"), ==, a_relay);
  reoffer = flow_wait_lines_file ("b-reoffer.crypto", 1);
  want = g_strdup_printf ("1 " SUITE_80 " %s", tb[0]);
  g_assert_cmpstr (reoffer[0], ==, want);
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          NULL, NULL, NULL, 1 + PACKETS, NULL),
                 srtp_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB,
                          SUITE_80, kb, tb[0], 1 + PACKETS, NULL) };
    after = probe (eps, G_N_ELEMENTS (eps));
  }
  assert_intact (after, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  assert_intact (after, alice.rtp_port, a_relay, SSRC_BOB, FILL_BOB, PACKETS);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");

  {
    const char *again = flow_require_msg (b->received, "INVITE ", 1);
    g_auto (GStrv) lines = crypto_lines (again);
    assert_proto (again, "RTP/SAVP");
    g_assert_cmpuint (g_strv_length (lines), ==, 1);
  }
  for (guint i = 0; i < b->received->len; i++) {
    const char *m = g_ptr_array_index (b->received, i);
    g_assert_null (strstr (m, k1));
    g_assert_null (strstr (m, k2));
  }
  for (guint n = 0; n < 2; n++) {
    g_auto (GStrv) lines = crypto_lines (flow_require_response (a->received, 200, "INVITE", n));
    g_assert_cmpuint (g_strv_length (lines), ==, 0);
  }
  flow_daemon_stop (d);
}

/* ---- 6. replayed and forged packets ----------------------------------------------------- */

/* At the call's end tandem logged what alice's leg dropped: about
 * `replayed` replays and `forged` bad tags (at most those: some may be
 * lost on the way), nothing it could not protect. */
static void
assert_drops_logged (FlowDaemon *d, guint replayed, guint forged)
{
  g_autofree char *path = g_build_filename (flow_case_dir (), "tandem.log", NULL);
  g_autofree char *log = NULL;
  const char *line;
  guint auth = 0, replays = 0, tx = 0;

  g_assert_true (flow_daemon_wait_log (d, "A-leg SRTP dropped", 5000));
  g_assert_true (g_file_get_contents (path, &log, NULL, NULL));
  line = strstr (log, "A-leg SRTP dropped");
  g_assert_cmpint (sscanf (line, "A-leg SRTP dropped %u packet(s) failing authentication, "
                           "%u replayed; %u could not be protected", &auth, &replays, &tx), ==, 3);
  flow_note ("tandem: %u bad tags, %u replays, %u not protected", auth, replays, tx);
  g_assert_cmpuint (replays, <=, replayed);
  g_assert_cmpuint (replays, >=, replayed - 5);
  g_assert_cmpuint (auth, <=, forged);
  g_assert_cmpuint (auth, >=, forged - 3);
  g_assert_cmpuint (tx, ==, 0);
  g_assert_null (strstr (log, "B-leg SRTP dropped"));   /* bob's leg is plain */
}

/* alice sends each SRTP packet twice: bob gets each once. Then every
 * second packet of hers has a forged tag (and a payload of its own): bob
 * gets the others, and none of those. tandem logs both counts. */
static void
test_replay_and_forged (void)
{
  g_autoptr (FlowDaemon) d = start_tandem (NULL);
  g_autofree char *ka = random_key (30);
  const char *alice_keys[] = { "proto", "RTP/SAVP", "suite", SUITE_80, "crypto_key", ka, NULL };
  FlowParty alice = party ("alice", "srtp-uac.xml", "a"), bob = party ("bob", "call-uas.xml", "b");
  g_autoptr (FlowRun) a = NULL, b = NULL;
  g_auto (GStrv) replayed = NULL, forged = NULL;
  g_auto (Answered) ta = { 0 };
  guint16 a_relay, b_relay;
  FlowSipp *sa, *sb;

  alice.keys = alice_keys;
  alice.pause_ms = "4000";
  sb = flow_callee_start (d, &bob);
  sa = flow_caller_start (d, &alice, "bob");
  b_relay = flow_wait_port_file ("b");
  a_relay = flow_wait_port_file ("a");
  read_answered ("a.crypto", &ta);
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, ka, ta.key, 1, "replay"),
                 plain_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB) };
    replayed = probe (eps, G_N_ELEMENTS (eps));
  }
  /* intact, and at most one each of the PACKETS sent twice */
  assert_intact (replayed, bob.rtp_port, b_relay, SSRC_ALICE, FILL_ALICE, PACKETS);
  {
    Ep eps[] = { srtp_ep (alice.rtp_port, a_relay, SSRC_ALICE, FILL_ALICE,
                          SUITE_80, ka, ta.key, 1 + PACKETS, "forge"),
                 srtp_ep (bob.rtp_port, b_relay, SSRC_BOB, FILL_BOB, NULL, NULL, NULL,
                          1 + PACKETS, NULL) };
    forged = probe (eps, G_N_ELEMENTS (eps));
  }
  g_assert_cmpuint (count_fill (forged, bob.rtp_port, FILL_ALICE ^ 0xff), ==, 0);
  g_assert_cmpuint (count_fill (forged, bob.rtp_port, FILL_ALICE), ==,
                    flow_probe_received (forged, bob.rtp_port, 0, 0));
  g_assert_cmpuint (count_fill (forged, bob.rtp_port, FILL_ALICE), >=, PACKETS / 2 - 3);
  g_assert_cmpuint (count_fill (forged, bob.rtp_port, FILL_ALICE), <=, PACKETS / 2);
  a = flow_sipp_finish (sa, "alice");
  b = flow_sipp_finish (sb, "bob");
  assert_drops_logged (d, PACKETS, PACKETS / 2);
  flow_daemon_stop (d);
}
int
main (int argc, char **argv)
{
  flow_init (&argc, &argv);
  g_assert_nonnull (g_getenv ("TANDEM_SRTP_PROBE"));
  flow_add_test ("/srtp/srtp-to-plain", test_srtp_to_plain);
  flow_add_test ("/srtp/best-effort-to-plain", test_best_effort_to_plain);
  flow_add_test ("/srtp/srtcp", test_srtcp);
  flow_add_test ("/srtp/plain-to-mandatory", test_plain_to_mandatory);
  flow_add_test ("/srtp/srtp-to-srtp-own-keys", test_srtp_to_srtp);
  flow_add_test ("/srtp/policy/mandatory-caller-plain-offer", test_mandatory_caller_plain);
  flow_add_test ("/srtp/policy/off-refuses-savp", test_off_refuses_savp);
  flow_add_test ("/srtp/policy/malformed-crypto", test_malformed_crypto);
  flow_add_test ("/srtp/rekey", test_rekey);
  flow_add_test ("/srtp/rekey-new-suite", test_rekey_new_suite);
  flow_add_test ("/srtp/reinvite-keeps-callee-keys", test_reinvite_keeps_callee_keys);
  flow_add_test ("/srtp/replay-and-forged", test_replay_and_forged);
  srtp_tunes_add_tests ();
  return g_test_run ();
}
