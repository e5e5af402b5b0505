/* See shim.h. Keep every function a direct call into the DPDK inline. */
#include <string.h>

#include <rte_config.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "shim.h"

uint16_t sluice_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t sluice_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

int sluice_rx_queue_count(uint16_t port, uint16_t queue)
{
	return rte_eth_rx_queue_count(port, queue);
}

struct rte_mbuf *sluice_pktmbuf_alloc(struct rte_mempool *pool)
{
	return rte_pktmbuf_alloc(pool);
}

int sluice_pktmbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **mbufs, unsigned int n)
{
	return rte_pktmbuf_alloc_bulk(pool, mbufs, n);
}

void sluice_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void sluice_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n)
{
	rte_pktmbuf_free_bulk(mbufs, n);
}

struct rte_mbuf *sluice_pktmbuf_copy(const struct rte_mbuf *m, struct rte_mempool *pool,
                                     uint32_t off, uint32_t len)
{
	struct rte_mbuf *c;
	uint16_t headroom;

	if (off > m->pkt_len)
		return NULL;
	if (len > m->pkt_len - off)
		len = m->pkt_len - off;

	if (m->nb_segs != 1)
		return rte_pktmbuf_copy(m, pool, off, len);

	c = rte_pktmbuf_alloc(pool);
	if (c == NULL)
		return NULL;
	/* Keep the source's headroom when it fits, else the pool default. */
	headroom = m->data_off + off > UINT16_MAX ? c->data_off : (uint16_t)(m->data_off + off);
	if ((uint32_t)headroom + len > c->buf_len) {
		rte_pktmbuf_free(c);
		return rte_pktmbuf_copy(m, pool, off, len);
	}
	c->data_off = headroom;
	c->port = m->port;
	c->vlan_tci = m->vlan_tci;
	c->vlan_tci_outer = m->vlan_tci_outer;
	c->tx_offload = m->tx_offload;
	c->hash = m->hash;
	c->packet_type = m->packet_type;
	c->ol_flags = m->ol_flags & ~(RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT);
	rte_mbuf_dynfield_copy(c, m);
	memcpy(rte_pktmbuf_mtod(c, char *), rte_pktmbuf_mtod_offset(m, const char *, off), len);
	c->data_len = (uint16_t)len;
	c->pkt_len = len;
	return c;
}

int sluice_errno(void)
{
	return rte_errno;
}

unsigned int sluice_lcore_id(void)
{
	return rte_lcore_id();
}

uint64_t sluice_get_tsc_cycles(void)
{
	return rte_get_tsc_cycles();
}

uint64_t sluice_get_tsc_hz(void)
{
	return rte_get_tsc_hz();
}
