/*
 * sluice C shim: out-of-line wrappers for DPDK's static-inline hot functions.
 *
 * bindgen cannot bind `static inline` functions, and the rx/tx burst and mbuf
 * alloc/free paths in DPDK are all inline. Each wrapper here is a plain call
 * into the inline body, compiled with -O3 against the same rte_config.h as the
 * installed DPDK. Nothing else lives here: per-packet field access is done in
 * Rust through the bindgen structs.
 */
#ifndef SLUICE_SHIM_H
#define SLUICE_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;

/* ethdev bursts */
uint16_t sluice_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t sluice_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
int sluice_rx_queue_count(uint16_t port, uint16_t queue);

/* mbuf alloc / free */
struct rte_mbuf *sluice_pktmbuf_alloc(struct rte_mempool *pool);
int sluice_pktmbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **mbufs, unsigned int n);
void sluice_pktmbuf_free(struct rte_mbuf *m);
void sluice_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n);

/*
 * Deep copy of bytes [off, off+len) of `m` into new mbuf(s) from `pool`,
 * with the packet metadata (port, hash, vlan, offload, packet type, dynfields).
 * A single-segment source whose copy fits one buffer keeps its headroom
 * (data_off) so prepends behave the same on the copy; otherwise falls back
 * to rte_pktmbuf_copy. NULL on allocation failure or bad range.
 */
struct rte_mbuf *sluice_pktmbuf_copy(const struct rte_mbuf *m, struct rte_mempool *pool,
                                     uint32_t off, uint32_t len);

/* per-lcore state and time */
int sluice_errno(void);
unsigned int sluice_lcore_id(void);
uint64_t sluice_get_tsc_cycles(void);
uint64_t sluice_get_tsc_hz(void);

#endif /* SLUICE_SHIM_H */
