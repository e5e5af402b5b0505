/* Everything bindgen sees. rte_config.h comes first through `-include`. */
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_version.h>

#include "src/shim.h"

/*
 * Constants DPDK defines through function-like macros (RTE_BIT64 and friends),
 * which bindgen cannot expand. Re-stated as typed consts that clang evaluates.
 */
static const uint64_t SLUICE_ETH_RSS_IP = RTE_ETH_RSS_IP;
static const uint64_t SLUICE_ETH_RSS_TCP = RTE_ETH_RSS_TCP;
static const uint64_t SLUICE_ETH_RSS_UDP = RTE_ETH_RSS_UDP;
static const uint64_t SLUICE_ETH_RSS_SCTP = RTE_ETH_RSS_SCTP;
static const uint64_t SLUICE_ETH_RSS_L2_PAYLOAD = RTE_ETH_RSS_L2_PAYLOAD;
static const uint64_t SLUICE_ETH_RX_OFFLOAD_RSS_HASH = RTE_ETH_RX_OFFLOAD_RSS_HASH;
static const uint64_t SLUICE_ETH_TX_OFFLOAD_MBUF_FAST_FREE = RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
static const uint64_t SLUICE_ETH_TX_OFFLOAD_MULTI_SEGS = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
static const uint32_t SLUICE_ETH_LINK_SPEED_AUTONEG = RTE_ETH_LINK_SPEED_AUTONEG;
static const uint64_t SLUICE_MBUF_F_RX_RSS_HASH = RTE_MBUF_F_RX_RSS_HASH;
static const uint16_t SLUICE_PKTMBUF_HEADROOM = RTE_PKTMBUF_HEADROOM;
static const uint16_t SLUICE_MBUF_DEFAULT_BUF_SIZE = RTE_MBUF_DEFAULT_BUF_SIZE;
static const uint16_t SLUICE_MBUF_DEFAULT_DATAROOM = RTE_MBUF_DEFAULT_DATAROOM;
static const uint32_t SLUICE_MAX_ETHPORTS = RTE_MAX_ETHPORTS;
static const uint32_t SLUICE_MAX_LCORE = RTE_MAX_LCORE;
static const int SLUICE_SOCKET_ID_ANY = SOCKET_ID_ANY;
static const uint32_t SLUICE_LCORE_ID_ANY = LCORE_ID_ANY;
static const uint16_t SLUICE_ETH_DEV_NO_OWNER = 0;
