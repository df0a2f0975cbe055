/* Unit tests of kvmi_hv/link.c against a fake stream and a fake engine. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "kvmi/kvmi.h"
#include "kvmi/kvmi_abi.h"
#include "kvmi_hv/link.h"

/* ---- fake stream --------------------------------------------------------------- */
struct net_stream {
    const struct net_stream_handler *h;
    size_t room;
    size_t queued;
    int closed;
    bool broken;
};
static struct net_stream st;
static bool have_net = true;

struct net_stream *net_transport_open(const struct net_stream_handler *h)
{
    if (!have_net)
        return NULL;
    memset(&st, 0, sizeof(st));
    st.h = h;
    st.room = 100;
    return &st;
}

int net_stream_send(struct net_stream *s, const void *data, size_t len)
{
    (void)data;
    if (s->broken)
        return NET_ENOTCONN;
    if (len > s->room)
        return NET_EAGAIN;
    s->room -= len;
    s->queued += len;
    return 0;
}

void net_stream_close(struct net_stream *s, bool flush)
{
    s->closed = flush ? 1 : 2;
}

/* ---- fake engine ------------------------------------------------------------------ */
static int connected_calls, connected_result, disconnected_calls, rx_calls;
static size_t rx_take = SIZE_MAX, rx_total;

int kvmi_connected(struct kvmi_vm *vm)
{
    (void)vm;
    connected_calls++;
    return connected_result;
}

size_t kvmi_rx(struct kvmi_vm *vm, const void *data, size_t len)
{
    (void)vm;
    (void)data;
    rx_calls++;
    size_t n = len < rx_take ? len : rx_take;
    rx_total += n;
    return n;
}

void kvmi_disconnected(struct kvmi_vm *vm)
{
    (void)vm;
    disconnected_calls++;
}

static struct kvmi_vm *const VM = (struct kvmi_vm *)0x1000;

static int setup(void **state)
{
    (void)state;
    connected_calls = connected_result = disconnected_calls = rx_calls = 0;
    rx_take = SIZE_MAX;
    rx_total = 0;
    have_net = true;
    return 0;
}

static void test_events_reach_the_engine(void **state)
{
    (void)state;
    struct net_kvmi k;
    assert_int_equal(net_kvmi_attach(&k, VM), 0);
    assert_ptr_equal(k.vm, VM);
    st.h->up(&st, st.h->ctx);
    assert_int_equal(connected_calls, 1);
    assert_int_equal(st.closed, 0);
    /* the engine takes 3 of 10 (job queue full): the stream is told 3 */
    rx_take = 3;
    assert_int_equal(st.h->rx(&st, st.h->ctx, "0123456789", 10), 3);
    /* each poll retries a parked message with an empty kvmi_rx() */
    int before = rx_calls;
    st.h->writable(&st, st.h->ctx);
    assert_int_equal(rx_calls, before + 1);
    st.h->down(&st, st.h->ctx);
    assert_int_equal(disconnected_calls, 1);
}

static void test_handshake_failure_resets(void **state)
{
    (void)state;
    struct net_kvmi k;
    net_kvmi_attach(&k, VM);
    connected_result = -KVM_EAGAIN;
    st.h->up(&st, st.h->ctx);
    assert_int_equal(st.closed, 2);
}

static void test_send_codes(void **state)
{
    (void)state;
    struct net_kvmi k;
    net_kvmi_attach(&k, VM);
    char msg[60] = {0};
    assert_int_equal(net_kvmi_send(&k, msg, 60), 0);
    assert_int_equal(net_kvmi_send(&k, msg, 60), -KVM_EAGAIN); /* 40 left: nothing queued */
    assert_int_equal(st.queued, 60);
    assert_int_equal(net_kvmi_send(&k, msg, 40), 0);
    st.broken = true;
    int r = net_kvmi_send(&k, msg, 1);
    assert_true(r < 0 && r != -KVM_EAGAIN);
    net_kvmi_close(&k);
    assert_int_equal(st.closed, 2);
}

static void test_no_network(void **state)
{
    (void)state;
    struct net_kvmi k;
    have_net = false;
    assert_int_equal(net_kvmi_attach(&k, VM), -1);
    char m = 0;
    int r = net_kvmi_send(&k, &m, 1);
    assert_true(r < 0 && r != -KVM_EAGAIN);
    net_kvmi_close(&k); /* harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_events_reach_the_engine, setup),
        cmocka_unit_test_setup(test_handshake_failure_resets, setup),
        cmocka_unit_test_setup(test_send_codes, setup),
        cmocka_unit_test_setup(test_no_network, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
