/*
 * netif.c - the network personality: one lwIP interface over a struct nic
 * (the driver moves frames; this file owns addresses, ARP, DHCP through
 * lwIP).  Received frames are copied out of the DMA ring into pool pbufs so
 * the ring never waits for lwIP to free a buffer.
 */
#include <stdio.h>
#include <string.h>

#include "hv_config.h"
#include "log.h"
#include "net_internal.h"
#include "net_io.h"

#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"
#include "netif/ethernet.h"

static struct netif nif;
static struct nic *the_nic;
static bool use_dhcp;

static err_t linkoutput(struct netif *n, struct pbuf *p)
{
    (void)n;
    if (p->tot_len > NIC_MAX_FRAME)
        return ERR_BUF;
    uint8_t *buf = the_nic->ops->tx_buf(the_nic);
    if (!buf)
        return ERR_MEM; /* ring full: TCP retransmits, ARP/DHCP retry */
    size_t len = pbuf_copy_partial(p, buf, p->tot_len, 0);
    the_nic->ops->tx_commit(the_nic, len);
    return ERR_OK;
}

static void status_cb(struct netif *n)
{
    if (!netif_is_up(n) || ip4_addr_isany_val(*netif_ip4_addr(n)))
        return;
    char ip[16], mask[16], gw[16];
    ip4addr_ntoa_r(netif_ip4_addr(n), ip, sizeof(ip));
    ip4addr_ntoa_r(netif_ip4_netmask(n), mask, sizeof(mask));
    ip4addr_ntoa_r(netif_ip4_gw(n), gw, sizeof(gw));
    log_info("net: address %s netmask %s gateway %s (%s)", ip, mask, gw,
             use_dhcp ? "dhcp" : "static");
}

static void link_cb(struct netif *n)
{
    log_info("net: link %s", netif_is_link_up(n) ? "up" : "down");
}

static err_t nif_init(struct netif *n)
{
    n->name[0] = 'e';
    n->name[1] = 'n';
    n->output = etharp_output;
    n->linkoutput = linkoutput;
    n->mtu = 1500;
    n->hwaddr_len = ETH_HWADDR_LEN;
    memcpy(n->hwaddr, the_nic->mac, ETH_HWADDR_LEN);
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    return ERR_OK;
}

int netif_glue_start(struct nic *nic, const struct hv_config *c)
{
    the_nic = nic;
    use_dhcp = c->dhcp;
    /* MEM_SIZE plus lwIP's two heap markers and alignment: one page covers them. */
    net_lwip_heap = net_alloc_pages(MEM_SIZE / 4096 + 1);
    if (!net_lwip_heap)
        return -1;
    lwip_init();
    ip4_addr_t ip, mask, gw;
    ip4_addr_set_u32(&ip, use_dhcp ? 0 : lwip_htonl(c->ip));
    ip4_addr_set_u32(&mask, use_dhcp ? 0 : lwip_htonl(c->netmask));
    ip4_addr_set_u32(&gw, use_dhcp ? 0 : lwip_htonl(c->gateway));
    if (!netif_add(&nif, &ip, &mask, &gw, NULL, nif_init, ethernet_input))
        return -1;
    netif_set_default(&nif);
    netif_set_status_callback(&nif, status_cb);
    netif_set_link_callback(&nif, link_cb);
    netif_set_up(&nif);
    if (nic->ops->link_up(nic))
        netif_set_link_up(&nif);
    if (use_dhcp && dhcp_start(&nif) != ERR_OK)
        return -1;
    return 0;
}

unsigned netif_glue_poll(unsigned budget)
{
    struct nic *n = the_nic;
    unsigned done = 0;
    size_t len;
    const void *frame;
    while (done < budget && (frame = n->ops->rx_peek(n, &len)) != NULL) {
        struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_POOL);
        if (p) {
            pbuf_take(p, frame, (u16_t)len);
            n->stats.rx_packets++;
            n->stats.rx_bytes += len;
        } else {
            n->stats.rx_dropped++; /* lwIP is out of pool buffers: TCP will resend */
        }
        n->ops->rx_release(n);
        if (p && nif.input(p, &nif) != ERR_OK)
            pbuf_free(p);
        done++;
    }
    /* Follow the link state (cheap: one register read). */
    bool up = n->ops->link_up(n);
    if (up != !!netif_is_link_up(&nif)) {
        if (up)
            netif_set_link_up(&nif);
        else
            netif_set_link_down(&nif);
    }
    return done;
}

uint32_t netif_glue_ip(void)
{
    if (!the_nic)
        return 0;
    return lwip_ntohl(ip4_addr_get_u32(netif_ip4_addr(&nif)));
}

struct nic *netif_glue_nic(void)
{
    return the_nic;
}

size_t netif_glue_status(char *buf, size_t cap)
{
    struct nic *n = the_nic;
    if (!n)
        return (size_t)snprintf(buf, cap, "no nic");
    n->ops->update_stats(n);
    char ip[16];
    ip4addr_ntoa_r(netif_ip4_addr(&nif), ip, sizeof(ip));
    const struct nic_stats *s = &n->stats;
    int r = snprintf(buf, cap,
                     "ip=%s mac=%02x:%02x:%02x:%02x:%02x:%02x link=%s rx=%llu/%lluB "
                     "tx=%llu/%lluB rx_err=%llu rx_drop=%llu tx_busy=%llu hw_missed=%llu "
                     "hw_nobuf=%llu hw_crc=%llu",
                     ip, n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5],
                     netif_is_link_up(&nif) ? "up" : "down", (unsigned long long)s->rx_packets,
                     (unsigned long long)s->rx_bytes, (unsigned long long)s->tx_packets,
                     (unsigned long long)s->tx_bytes, (unsigned long long)s->rx_errors,
                     (unsigned long long)s->rx_dropped, (unsigned long long)s->tx_busy,
                     (unsigned long long)s->hw_missed, (unsigned long long)s->hw_no_buf,
                     (unsigned long long)s->hw_crc);
    return r < 0 ? 0 : (size_t)r < cap ? (size_t)r : cap - 1;
}
